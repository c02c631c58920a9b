"""The container engine `make test-images` drives: Docker Engine with `docker compose`, or
podman with podman-compose. Both are driven through the same few verbs, so the scenario in
stack_test.py reads the same on either."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A slow start on a busy 2-core machine is not a failure; a step that hangs is.
WAIT_SECONDS = 300.0


class StackError(Exception):
    """The stack did not do what the compose file promises."""


@dataclass
class Engine:
    """One compose project run by one engine (`docker` or `podman`)."""

    name: str
    compose_command: list[str]
    project: str
    project_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    # --- plumbing ---------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        result = subprocess.run(
            [self.name, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise StackError(f"{self.name} {' '.join(args)}: {result.stderr.strip()[-2000:]}")
        return result.stdout

    def compose(self, *args: str, check: bool = True, timeout: float = 1800) -> None:
        command = [*self.compose_command, "-p", self.project, "-f", "docker-compose.yml", *args]
        result = subprocess.run(
            command,
            cwd=self.project_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-4000:]
            raise StackError(f"{' '.join(command)} failed:\n{output}")

    # --- verbs ------------------------------------------------------------------------

    def build(self, images: Mapping[str, tuple[str, str]]) -> None:
        """What `docker compose up --build` builds: image -> (context, dockerfile).
        podman-compose builds once per service (seven builds of three images, all at once
        on a 2-core machine), so podman builds each image once; `--format docker` keeps
        the HEALTHCHECK (the OCI image format has no field for it)."""
        if self.name == "docker":
            self.compose("build")
            return
        for image, (context, dockerfile) in images.items():
            path = self.project_dir / dockerfile
            build = ["build", "--format", "docker", "--file", str(path)]
            repository = image.rsplit(":", 1)[0]
            # The image and each named stage keep a `cache` tag: pruning after the run then
            # drops older builds only, and the next run starts from this one's layers.
            for stage in named_stages(path.read_text()):
                self.cli(
                    *build, "--target", stage, "--tag", f"{repository}:cache-{stage}",
                    str(self.project_dir / context), timeout=1800,
                )  # fmt: skip
            self.cli(
                *build, "--tag", image, "--tag", f"{repository}:cache",
                str(self.project_dir / context), timeout=1800,
            )  # fmt: skip

    def remove_images(self, images: Sequence[str]) -> None:
        """This run's tags go; with podman, so do the layers of earlier builds that no
        `cache` tag holds any more (each run would otherwise leave ~150 MB per image)."""
        if images:
            self.cli("rmi", *images, check=False)
        if self.name == "podman":
            self.cli("image", "prune", "--force", check=False)

    def up(self, stages: Sequence[Sequence[str]], one_shots: set[str]) -> None:
        """Start the stack. Docker follows depends_on itself; podman 4.3 loses track of
        depends_on chains, so there each stage starts on its own once the one before is
        healthy (or, for one-shot steps, has exited 0)."""
        if self.name == "docker":
            # Docker holds each container back until its depends_on conditions are met.
            self.compose("up", "--detach", "--no-build")
            for stage in stages:
                self.wait(stage, one_shots)
            return
        for stage in stages:
            self.compose("up", "--detach", "--no-build", "--no-deps", *stage)
            self.wait(stage, one_shots)

    def down(self, *, volumes: bool, check: bool = True) -> None:
        self.compose("down", *(["--volumes"] if volumes else []), check=check, timeout=600)

    # --- what is running --------------------------------------------------------------

    def containers(self) -> dict[str, list[dict[str, Any]]]:
        """Every container of the project, running or not, by compose service name."""
        label = f"label=com.docker.compose.project={self.project}"
        ids = self.cli("ps", "--all", "--quiet", "--filter", label).split()
        by_service: dict[str, list[dict[str, Any]]] = {}
        if not ids:
            return by_service
        for container in json.loads(self.cli("inspect", *ids)):
            service = container["Config"]["Labels"]["com.docker.compose.service"]
            by_service.setdefault(service, []).append(container)
        return by_service

    def volumes(self) -> list[str]:
        names = self.cli("volume", "ls", "--quiet").split()
        return [name for name in names if name.startswith(f"{self.project}_")]

    def image(self, reference: str) -> dict[str, Any]:
        inspected = json.loads(self.cli("image", "inspect", reference))
        assert isinstance(inspected, list)
        return dict(inspected[0])

    def healthcheck(self, container: Mapping[str, Any]) -> bool:
        """Runs (podman) or reads (Docker) the container's HEALTHCHECK: True when it passes.
        podman runs health checks through systemd timers, absent here, so it is run on
        demand: the same command, with the same user and environment."""
        if self.name == "podman":
            result = subprocess.run(
                ["podman", "healthcheck", "run", container["Id"]],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            return result.returncode == 0
        state = json.loads(self.cli("inspect", container["Id"]))[0]["State"]
        return bool(state.get("Health", {}).get("Status") == "healthy")

    def logs(self, container: Mapping[str, Any]) -> str:
        result = subprocess.run(
            [self.name, "logs", "--tail", "40", container["Id"]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return (result.stdout + result.stderr).strip()

    def wait(self, services: Sequence[str], one_shots: set[str]) -> None:
        """Until every service is healthy (or running, without a HEALTHCHECK), and every
        one-shot step has exited 0."""
        pending = list(services)
        deadline = time.monotonic() + WAIT_SECONDS
        while pending:
            found = self.containers()
            for service in list(pending):
                if self._ready(service, found.get(service, []), one_shots):
                    pending.remove(service)
            if not pending:
                return
            if time.monotonic() > deadline:
                details = "\n".join(
                    f"--- {service}:\n{self.logs(container)}"
                    for service in pending
                    for container in found.get(service, [])
                )
                raise StackError(f"not ready after {WAIT_SECONDS:.0f} s: {pending}\n{details}")
            time.sleep(1)

    def _ready(self, service: str, containers: list[dict[str, Any]], one_shots: set[str]) -> bool:
        if not containers:
            return False
        for container in containers:
            state = container["State"]
            if service in one_shots:
                if state["Status"] not in ("exited", "stopped"):
                    return False
                if state["ExitCode"] != 0:
                    raise StackError(
                        f"one-shot step {service} exited {state['ExitCode']}:\n"
                        + self.logs(container)
                    )
                continue
            if state["Status"] != "running":
                if state["Status"] in ("exited", "stopped", "dead"):
                    raise StackError(
                        f"{service} is {state['Status']} (exit {state.get('ExitCode')}):\n"
                        + self.logs(container)
                    )
                return False
            if has_healthcheck(container) and not self.healthcheck(container):
                return False
        return True


def named_stages(dockerfile: str) -> list[str]:
    """`FROM image AS name` stages, in order."""
    return re.findall(r"^FROM \S+ AS (\w+)", dockerfile, re.MULTILINE | re.IGNORECASE)


def has_healthcheck(container: Mapping[str, Any]) -> bool:
    check = container["Config"].get("Healthcheck") or {}
    test = check.get("Test") or []
    return bool(test) and test != ["NONE"]
