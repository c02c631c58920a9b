"""`make test-images`: build every image of docker-compose.yml, run the stack as a user
would, and check it through its one published port.

Usage: python deploy/images/stack_test.py --engine podman|docker [--port N]
Whatever it starts it removes again (containers, networks, volumes), on failure and on
SIGINT/SIGTERM too. The services come from the compose file, never from a list here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import yaml
from engine import Engine, StackError, has_healthcheck
from flow import after_restart, first_run, wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# What `docker compose up --build` in a checkout sees, minus what is never committed: local
# state at the top (a package's own `data/` folder would still be copied), caches anywhere.
NOT_COPIED_AT_TOP = {".git", ".venv", ".tools", "data", "test-artifacts", "node_modules", ".env"}
NOT_COPIED_ANYWHERE = shutil.ignore_patterns(
    "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.db"
)
GATEWAY = "api-gateway"
Compose = dict[str, Any]


def say(message: str) -> None:
    print(f"test-images: {message}", flush=True)  # noqa: T201


# --- reading the compose file ------------------------------------------------------------


_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\})")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's `${NAME}`, `${NAME:-default}` and `$$` in every string."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            return env.get(match.group("name")) or match.group("default") or ""

        return _VARIABLE.sub(replace, value)
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return value


def read_compose(project_dir: Path, environ: dict[str, str]) -> Compose:
    """The compose file as the tool sees it: anchors merged, variables from the shell
    first, then the project's `.env`, then the file's defaults."""
    dotenv = {}
    if (project_dir / ".env").is_file():
        for line in (project_dir / ".env").read_text().splitlines():
            name, separator, value = line.partition("=")
            if separator and not line.lstrip().startswith("#"):
                dotenv[name.strip()] = value
    loaded = yaml.safe_load((project_dir / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return dict(interpolate(loaded, {**dotenv, **environ}))


def depends_on(spec: dict[str, Any]) -> dict[str, str]:
    """service -> condition; the short list form means `service_started`."""
    value = spec.get("depends_on") or {}
    if isinstance(value, list):
        return dict.fromkeys(value, "service_started")
    return {name: (rule or {}).get("condition", "service_started") for name, rule in value.items()}


def one_shot_services(compose: Compose) -> set[str]:
    """Steps that run to completion: restart "no", or awaited as completed by another."""
    services = compose["services"]
    awaited = {
        name
        for spec in services.values()
        for name, condition in depends_on(spec).items()
        if condition == "service_completed_successfully"
    }
    return awaited | {name for name, spec in services.items() if spec.get("restart") == "no"}


def start_stages(compose: Compose) -> list[list[str]]:
    """The services in depends_on order: each stage needs only the ones before it."""
    remaining = {name: set(depends_on(spec)) for name, spec in compose["services"].items()}
    stages: list[list[str]] = []
    done: set[str] = set()
    while remaining:
        stage = sorted(name for name, needs in remaining.items() if needs <= done)
        if not stage:
            raise StackError(f"depends_on has a cycle among {sorted(remaining)}")
        stages.append(stage)
        done.update(stage)
        for name in stage:
            del remaining[name]
    return stages


def built_services(compose: Compose) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in compose["services"].items() if "build" in spec}


def images_to_build(compose: Compose) -> dict[str, tuple[str, str]]:
    """image -> (build context, Dockerfile), once per image however many services use it."""
    return {
        spec["image"]: (spec["build"].get("context", "."), spec["build"]["dockerfile"])
        for spec in built_services(compose).values()
    }


def from_images(dockerfile: str) -> set[str]:
    """The images a Dockerfile's FROM lines name, `${ARG}` replaced by the ARG's default;
    earlier stages (FROM build) are not images."""
    args: dict[str, str] = dict(re.findall(r"^ARG (\w+)=(\S+)", dockerfile, re.MULTILINE))
    stages = set(re.findall(r"^FROM \S+ AS (\w+)", dockerfile, re.MULTILINE | re.IGNORECASE))

    def resolve(match: re.Match[str]) -> str:
        return args.get(match.group(1), "")

    names = {
        re.sub(r"\$\{(\w+)\}", resolve, reference)
        for reference in re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    }
    return {name for name in names if name and name not in stages}


def base_images(compose: Compose, project_dir: Path) -> list[str]:
    """The images the stack pulls: the Dockerfiles' bases and every service not built here."""
    images: set[str] = set()
    for spec in built_services(compose).values():
        build = spec["build"]
        images |= from_images(
            (project_dir / build.get("context", ".") / build["dockerfile"]).read_text()
        )
    for spec in compose["services"].values():
        if "build" not in spec:
            images.add(spec["image"])
    return sorted(images)


# --- the run -----------------------------------------------------------------------------


def spare_port() -> int:
    """A free port from the kernel's ephemeral range: never 5000-5004 nor a shared server's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        assert isinstance(port, int)
        return port


def copy_project(target: Path) -> None:
    """The stack runs from a copy: its own `.env` (ADMIN, database password) must neither
    read nor overwrite a developer's."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(NOT_COPIED_ANYWHERE(directory, names))
        if Path(directory) == ROOT:
            skipped |= NOT_COPIED_AT_TOP & set(names)
        return skipped

    shutil.copytree(ROOT, target, ignore=ignore, symlinks=True, dirs_exist_ok=True)


@contextmanager
def timed(label: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.monotonic()
    say(f"{label} ...")
    yield
    timings[label] = time.monotonic() - started
    say(f"{label}: {timings[label]:.0f} s")


def stop_on_signals() -> None:
    """SIGTERM/SIGHUP end the run through the `finally` that removes the stack."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)


def image_sizes(engine: Engine, compose: Compose) -> dict[str, int]:
    images = sorted({spec["image"] for spec in built_services(compose).values()})
    return {image: int(engine.image(image)["Size"]) for image in images}


# --- checks ------------------------------------------------------------------------------


def check_published_ports(engine: Engine, port: int) -> None:
    """Only the gateway's port is published, and on the port asked for (Docker lists it
    once per address family, hence sets)."""
    published: dict[str, set[str]] = {}
    for service, containers in engine.containers().items():
        for container in containers:
            ports = container["NetworkSettings"].get("Ports") or {}
            for inside, bindings in ports.items():
                for binding in bindings or []:
                    if binding.get("HostPort"):
                        mapping = f"{binding['HostPort']}->{inside}"
                        published.setdefault(service, set()).add(mapping)
    if published != {GATEWAY: {f"{port}->5000/tcp"}}:
        raise StackError(f"published ports: {published}, expected only {GATEWAY} on {port}")


def check_locked_down(engine: Engine, compose: Compose) -> None:
    """Every container of our images: a non-root user and a read-only root file system."""
    containers = engine.containers()
    for service in built_services(compose):
        if service not in containers:
            raise StackError(f"{service} has no container")
        for container in containers[service]:
            user = str(container["Config"].get("User") or "")
            if user.split(":")[0] in ("", "0", "root"):
                raise StackError(f"{service} runs as {user or 'root'}")
            if container["HostConfig"].get("ReadonlyRootfs") is not True:
                raise StackError(f"{service} has a writable root file system")
            if container["State"]["Status"] != "running":
                continue
            uid = engine.cli("exec", container["Id"], "id", "-u").strip()
            if uid == "0":
                raise StackError(f"{service} runs as uid 0")
            probe = subprocess.run(
                [engine.name, "exec", container["Id"], "touch", "/write-probe"],
                capture_output=True,
                timeout=60,
                check=False,
            )
            if probe.returncode == 0:
                raise StackError(f"{service} could write to its root file system")


def check_one_shots(engine: Engine, compose: Compose) -> None:
    containers = engine.containers()
    for service in one_shot_services(compose):
        for container in containers.get(service, []):
            state = container["State"]
            if state["Status"] not in ("exited", "stopped") or state["ExitCode"] != 0:
                raise StackError(f"one-shot {service}: {state['Status']} {state['ExitCode']}")
        if service not in containers:
            raise StackError(f"one-shot {service} never ran")


def check_healthchecks(engine: Engine, compose: Compose) -> None:
    """Each image carries its HEALTHCHECK, and it passes in each running container."""
    containers = engine.containers()
    for service, spec in built_services(compose).items():
        image = engine.image(spec["image"])
        # Docker keeps it in Config, podman beside it.
        declared = (image.get("Config") or {}).get("Healthcheck") or image.get("Healthcheck")
        if not (declared or {}).get("Test"):
            raise StackError(f"{spec['image']} has no HEALTHCHECK")
        for container in containers[service]:
            if container["State"]["Status"] != "running":
                continue
            if not has_healthcheck(container) or not engine.healthcheck(container):
                raise StackError(f"{service}: the HEALTHCHECK does not pass")


def nats_monitor(compose: Compose) -> tuple[str, str]:
    """The NATS service (the one from a `nats` image) and its monitoring port (`-m`)."""
    for name, spec in compose["services"].items():
        if str(spec.get("image", "")).split(":")[0].split("/")[-1] == "nats":
            command = [str(part) for part in spec.get("command", [])]
            port = command[command.index("-m") + 1] if "-m" in command else "8222"
            return name, port
    raise StackError("the compose file has no NATS service")


def events_unsettled(jsz: dict[str, Any], stream: str) -> str | None:
    """What is still missing in JetStream's /jsz report for `stream`: no event yet, or a
    consumer that has not acknowledged everything; None once the events went through."""
    details = [
        detail
        for account in jsz.get("account_details") or []
        for detail in account.get("stream_detail") or []
        if detail.get("name") == stream
    ]
    if not details or details[0]["state"]["messages"] < 1:
        return f"no event in the {stream} stream"
    for consumer in details[0].get("consumer_detail") or []:
        if consumer["num_pending"] or consumer["num_ack_pending"]:
            return (
                f"consumer {consumer['name']} of {stream}: {consumer['num_pending']} pending, "
                f"{consumer['num_ack_pending']} unacknowledged"
            )
    return None


def check_events_flowed(engine: Engine, compose: Compose, stream: str = "ORDERS") -> None:
    """The order's event went through order-service's outbox relay into JetStream, and
    every durable consumer of the stream (product-service's) acknowledged it."""
    service, port = nats_monitor(compose)
    (container, *_) = engine.containers()[service]
    url = f"http://127.0.0.1:{port}/jsz?streams=true&consumers=true"
    deadline = time.monotonic() + 60
    while True:
        report = json.loads(engine.cli("exec", container["Id"], "wget", "-q", "-O", "-", url))
        problem = events_unsettled(report, stream)
        if problem is None:
            return
        if time.monotonic() > deadline:
            raise StackError(f"events: {problem} after 60 s")
        time.sleep(1)


def check_volumes_removed(engine: Engine) -> None:
    left = engine.volumes()
    if left:
        raise StackError(f"down --volumes left {left}")
    if engine.containers():
        raise StackError("down left containers behind")


# --- main --------------------------------------------------------------------------------


def say_service_logs(engine: Engine) -> None:
    """The last lines of every long-running container, so a failed run says why."""
    try:
        found = engine.containers()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        say(f"no logs: {exc}")
        return
    for service, containers in sorted(found.items()):
        for container in containers:
            say(f"--- logs of {service}:\n{engine.logs(container)}")


def compose_command(engine_name: str, tools: Path) -> list[str]:
    if engine_name == "docker":
        return ["docker", "compose"]
    # podman-compose makes a pod by default, which would put every container in one
    # network namespace; the compose file's networks must stay apart.
    return [str(tools / "podman-compose" / "bin" / "podman-compose"), "--in-pod", "false"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", choices=["docker", "podman"], required=True)
    parser.add_argument("--port", type=int, default=0, help="host port (default: a free one)")
    parser.add_argument("--tools", type=Path, default=ROOT / ".tools")
    args = parser.parse_args(argv)
    stop_on_signals()

    port = args.port or spare_port()
    workdir = Path(tempfile.mkdtemp(prefix="shop-images-"))
    project = f"shop-image-test-{secrets.token_hex(3)}"
    admin_email, admin_password = "admin@example.com", secrets.token_urlsafe(18)
    # A tag of its own, so a run never starts another run's (or a developer's) images.
    env = {**os.environ, "SHOP_PORT": str(port), "SHOP_TAG": project.removeprefix("shop-")}
    engine = Engine(args.engine, compose_command(args.engine, args.tools), project, workdir, env)
    timings: dict[str, float] = {}
    built: list[str] = []
    total = time.monotonic()
    try:
        copy_project(workdir)
        (workdir / ".env").write_text(
            f"POSTGRES_PASSWORD={secrets.token_urlsafe(18)}\n"
            f"ADMIN_EMAIL={admin_email}\nADMIN_PASSWORD={admin_password}\n"
        )
        compose = read_compose(workdir, env)
        stages = start_stages(compose)
        one_shots = one_shot_services(compose)
        say(f"engine {args.engine}, project {project}, port {port}, stages {stages}")

        with timed("base images", timings):
            subprocess.run(
                ["bash", str(HERE / "standins.sh"), args.engine, *base_images(compose, workdir)],
                check=True,
            )
        with timed("build", timings):
            to_build = images_to_build(compose)
            built = list(to_build)
            engine.build(to_build)
        for image, size in image_sizes(engine, compose).items():
            say(f"image {image}: {size / 1e6:.0f} MB")
        with timed("up", timings):
            engine.up(stages, one_shots)

        steps: list[tuple[str, Callable[[], None]]] = [
            ("only the gateway's port is published", lambda: check_published_ports(engine, port)),
            ("non-root, read-only root", lambda: check_locked_down(engine, compose)),
            ("one-shot steps exited 0", lambda: check_one_shots(engine, compose)),
            ("HEALTHCHECK passes", lambda: check_healthchecks(engine, compose)),
        ]
        for label, check in steps:
            check()
            say(f"ok: {label}")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            say(f"ok: GET /ready, every check ok after {wait_until_ready(client):.1f} s")
            seen = first_run(client, admin_email=admin_email, admin_password=admin_password)
            say(
                "ok: register, login, me, create, list with q, USER delete 403, ADMIN delete, "
                "an order with an Idempotency-Key (201, replayed, stock reserved)"
            )
            check_events_flowed(engine, compose)
            say("ok: the order's event is in JetStream and every consumer acknowledged it")
            with timed("down and up again", timings):
                engine.down(volumes=False)
                engine.up(stages, one_shots)
            check_one_shots(engine, compose)
            say(f"ok: GET /ready, every check ok after {wait_until_ready(client):.1f} s")
            after_restart(client, seen)
            say("ok: a second up keeps accounts, products, orders, stock and keys")
        engine.down(volumes=True)
        check_volumes_removed(engine)
        say("ok: down --volumes removes the containers and the data")
        timings["total"] = time.monotonic() - total
        say("passed; " + ", ".join(f"{label} {sec:.0f} s" for label, sec in timings.items()))
        return 0
    except (StackError, AssertionError, subprocess.CalledProcessError, httpx.HTTPError) as exc:
        say(f"FAILED: {exc}")
        say_service_logs(engine)
        return 1
    finally:
        # Idempotent: nothing stays behind, whatever happened before.
        engine.down(volumes=True, check=False)
        engine.remove_images(built)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
