"""The one list of services (shop_common.services) agrees with everything else that names
them: the workspace, the Makefile, the Dockerfiles and .dockerignore, compose, the
Kubernetes manifests and the services' own settings (docs/adding-a-service.md)."""

from __future__ import annotations

import importlib
import re
import tomllib
from typing import Any

import pytest
import yaml

from shop_common.services import GATEWAY, SERVICES, UPSTREAMS, WITH_DATABASE, ServiceSpec
from tests.deploy.conftest import K8S, ROOT, Dockerfile, read_dotenv

PARAMS = [pytest.param(service, id=service.name) for service in SERVICES]
MEMBERS = {"shop-common", *(service.name for service in SERVICES)}
PACKAGES = {service.package for service in SERVICES}
WORKSPACE: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_list_names_each_service_port_and_setting_once() -> None:
    for field in ("name", "package", "settings_prefix", "port"):
        values = [getattr(service, field) for service in SERVICES]
        assert len(values) == len(set(values)), field
    assert GATEWAY in SERVICES and GATEWAY not in UPSTREAMS


def test_the_workspace_has_shop_common_and_exactly_the_listed_services() -> None:
    assert set(WORKSPACE["tool"]["uv"]["workspace"]["members"]) == MEMBERS
    assert set(WORKSPACE["tool"]["uv"]["sources"]) == MEMBERS
    assert set(WORKSPACE["project"]["dependencies"]) >= MEMBERS
    mypy_path = WORKSPACE["tool"]["mypy"]["mypy_path"]
    assert {f"{member}/src" for member in MEMBERS} <= set(mypy_path)
    isort = WORKSPACE["tool"]["ruff"]["lint"]["isort"]["known-first-party"]
    assert {"shop_common", *PACKAGES} <= set(isort)


def test_import_linter_keeps_every_listed_service_apart() -> None:
    linter = WORKSPACE["tool"]["importlinter"]
    assert set(linter["root_packages"]) == {"shop_common", *PACKAGES}
    contracts = {contract["type"]: contract for contract in linter["contracts"]}
    assert set(contracts["independence"]["modules"]) == PACKAGES
    assert set(contracts["forbidden"]["forbidden_modules"]) == PACKAGES


def test_the_makefile_installs_checks_and_tests_every_listed_service() -> None:
    line = re.search(r"^SERVICES := (.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert line is not None
    assert set(line.group(1).split()) == MEMBERS


@pytest.mark.parametrize("service", PARAMS)
def test_the_service_folder_holds_its_package_and_image(service: ServiceSpec) -> None:
    folder = ROOT / service.name
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    assert project["name"] == service.name
    assert (folder / "src" / service.package / "__init__.py").is_file()
    assert (folder / "src" / service.package / "__main__.py").is_file()
    assert (folder / "Dockerfile").is_file()


@pytest.mark.parametrize("service", PARAMS)
def test_each_dockerfile_copies_the_context_s_manifests_and_its_own_package(
    service: ServiceSpec,
) -> None:
    copies = [
        i.value.split()
        for i in Dockerfile.read(ROOT / service.name / "Dockerfile").instructions
        if i.keyword == "COPY" and not i.value.startswith("--from")
    ]
    # uv sync --frozen resolves the whole workspace: the manifests stage takes every
    # member's pyproject from the context (`COPY . /src`), so no member is named.
    copied = {source for *sources, _target in copies for source in sources}
    assert {".", "shop-common", service.name} <= copied


def test_the_docker_build_context_lets_in_every_member_and_no_tests() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for member in MEMBERS:
        assert {f"{member}/pyproject.toml", f"{member}/src"} <= allowed, member
    assert not any("test" in entry for entry in allowed)


@pytest.mark.parametrize("service", PARAMS)
def test_compose_runs_each_service_on_its_listed_port_and_database(
    service: ServiceSpec, compose: dict[str, Any]
) -> None:
    spec = compose["services"][service.name]
    assert spec["build"]["dockerfile"] == f"{service.name}/Dockerfile"
    env = {key: str(value) for key, value in spec["environment"].items()}
    assert env[service.port_setting] == str(service.port)
    if service.database_setting:
        assert env[service.database_setting].startswith("postgresql+asyncpg://")


def test_compose_points_the_gateway_at_every_upstream(compose: dict[str, Any]) -> None:
    env = compose["services"][GATEWAY.name]["environment"]
    for service in UPSTREAMS:
        assert env[service.upstream_setting] == f"http://{service.name}:{service.port}"


def k8s_documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / "base" / name).read_text()) if doc]


def container_env(document: dict[str, Any]) -> dict[str, Any]:
    (container,) = [
        c for c in document["spec"]["template"]["spec"]["containers"] if c["name"] != "istio"
    ]
    return {item["name"]: item for item in container.get("env", [])}


@pytest.mark.parametrize("service", PARAMS)
def test_the_manifests_run_each_service_on_its_listed_port_and_database(
    service: ServiceSpec,
) -> None:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert f"{service.name}.yaml" in kustomization["resources"]
    documents = k8s_documents(f"{service.name}.yaml")
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in documents}
    assert {("Deployment", service.name), ("Service", service.name)} <= kinds
    (deployment,) = [doc for doc in documents if doc["kind"] == "Deployment"]
    env = container_env(deployment)
    assert env[service.port_setting]["value"] == str(service.port)
    (kube_service,) = [doc for doc in documents if doc["kind"] == "Service"]
    assert [port["port"] for port in kube_service["spec"]["ports"]] == [service.port]
    if service.database_setting:
        assert service.database_setting in env


def test_the_manifests_migrate_every_listed_database_and_point_the_gateway_at_all() -> None:
    migrating = {
        name
        for job in k8s_documents("migrations.yaml")
        if job["kind"] == "Job"
        for name in container_env(job)
    }
    assert {service.database_setting for service in WITH_DATABASE} <= migrating
    settings = read_dotenv(K8S / "base" / "settings.env")
    for service in UPSTREAMS:
        assert settings[service.upstream_setting or ""] == (f"http://{service.name}:{service.port}")


@pytest.mark.parametrize("service", PARAMS)
def test_each_service_listens_where_the_list_says_by_default(service: ServiceSpec) -> None:
    settings = importlib.import_module(f"{service.package}.config").Settings
    fields = settings.model_fields
    assert fields[service.port_setting.lower()].default == service.port
    assert service.host_setting.lower() in fields


@pytest.mark.parametrize("service", [pytest.param(s, id=s.name) for s in WITH_DATABASE])
def test_each_database_setting_and_version_table_are_the_services_own(
    service: ServiceSpec, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert service.database_setting is not None
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv(service.database_setting, raising=False)
    settings = importlib.import_module(f"{service.package}.config").Settings()
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / service.sqlite_file}"
    url = "postgresql+asyncpg://u@db.example/shop"
    monkeypatch.setenv(service.database_setting, url)
    assert importlib.import_module(f"{service.package}.config").Settings().database_url == url
    db = importlib.import_module(f"{service.package}.db")
    assert db.VERSION_TABLE == service.version_table


def test_the_gateway_has_an_upstream_and_a_credential_audience_per_listed_service() -> None:
    from api_gateway.config import Settings
    from api_gateway.policy import Service

    assert {member.value for member in Service} == {service.name for service in UPSTREAMS}
    for service in UPSTREAMS:
        assert (service.upstream_setting or "").lower() in Settings.model_fields
        assert Settings.model_fields[service.port_setting.lower()].default == service.port
