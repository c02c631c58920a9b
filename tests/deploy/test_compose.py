"""docker-compose.yml: valid against the Compose Specification, and shaped as promised."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shop_common.services import UPSTREAMS, WITH_DATABASE
from tests.deploy.conftest import (
    BY_NAME,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    HERE,
    ROOT,
    SERVICES,
    compose_variables,
    read_dotenv,
    settings_names,
)

SCHEMA = HERE / "compose-spec.schema.json"
# The key steps, then one migration step per listed database (migrate-auth, ...).
KEY_STEPS = ("gateway-keys", "order-service-keys", "auth-keys")
MIGRATIONS = tuple(f"migrate-{service.settings_prefix.lower()}" for service in WITH_DATABASE)
ONE_SHOTS = KEY_STEPS + MIGRATIONS
BACKING = ("postgres", "redis", "nats")


def check_jsonschema(document: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--schemafile",
            str(SCHEMA),
            str(document),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_committed_schema_is_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["title"] == "Compose Specification"
    assert "services" in schema["properties"]


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    result = check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param('ports: ["${SHOP_PORT:-5000}:5000"]', "ports: 5000", id="ports not a list"),
        pytest.param("restart: unless-stopped", "restart: [always]", id="restart not a string"),
        pytest.param("condition: service_healthy", "condition: {}", id="bad depends_on"),
        pytest.param("read_only: true", "read_only: true\n  readonly: true", id="unknown key"),
    ],
)
def test_the_schema_check_rejects_a_broken_compose_file(tmp_path: Path, old: str, new: str) -> None:
    text = COMPOSE_FILE.read_text()
    assert old in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))
    assert check_jsonschema(broken).returncode != 0


def test_only_the_gateway_publishes_a_port_and_only_5000(compose: dict[str, Any]) -> None:
    published = {
        name: spec["ports"] for name, spec in compose["services"].items() if "ports" in spec
    }
    assert published == {"api-gateway": ["5000:5000"]}
    for spec in compose["services"].values():
        assert spec.get("network_mode") in (None, "none"), "no host networking"


def test_everything_but_the_gateway_lives_on_the_internal_network_only(
    compose: dict[str, Any],
) -> None:
    assert compose["networks"]["internal"] == {"internal": True}
    for name, spec in compose["services"].items():
        if name == "api-gateway":
            assert sorted(spec["networks"]) == ["edge", "internal"]
        elif spec.get("network_mode") == "none":
            assert "networks" not in spec
        else:
            assert spec["networks"] == ["internal"], name


def test_servers_wait_for_healthy_or_finished_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, spec in services.items():
        for dependency, rule in spec.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            expected = (
                "service_completed_successfully" if dependency in ONE_SHOTS else "service_healthy"
            )
            assert rule == {"condition": expected}, (name, dependency)
    gateway_needs = set(services["api-gateway"]["depends_on"])
    assert gateway_needs == {service.name for service in UPSTREAMS} | {"redis"}
    assert {"migrate-auth", "auth-keys", "gateway-keys"} <= set(
        services["auth-service"]["depends_on"]
    )
    assert {"migrate-product", "gateway-keys", "order-service-keys", "nats"} <= set(
        services["product-service"]["depends_on"]
    )
    # order-service reserves stock at product-service and publishes to NATS from the start.
    assert {"migrate-order", "gateway-keys", "order-service-keys", "nats", "product-service"} <= (
        set(services["order-service"]["depends_on"])
    )
    for backing in BACKING:
        assert services[backing]["healthcheck"]["test"], f"{backing} needs a healthcheck"


def test_migrations_and_keys_are_one_shot_steps_not_part_of_serving(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no", name
    assert services["migrate-auth"]["command"] == ["migrate"]
    assert services["migrate-product"]["command"] == ["migrate"]
    assert services["migrate-order"]["command"] == ["migrate"]
    assert services["order-service-keys"]["entrypoint"] == ["python", "-m", "shop_common.keys"]
    assert services["auth-keys"]["command"] == ["keys", "init"]
    assert services["gateway-keys"]["entrypoint"] == ["python", "-m", "shop_common.keys"]
    for service in SERVICES:
        assert services[service.name]["command"] == ["serve"]
        assert services[service.name]["restart"] == "unless-stopped"


def test_each_image_is_built_from_its_own_dockerfile(compose: dict[str, Any]) -> None:
    images: dict[str, str] = {}
    for name, spec in compose["services"].items():
        if name in BACKING:
            assert "build" not in spec
            continue
        dockerfile = spec["build"]["dockerfile"]
        assert spec["build"]["context"] == "."
        assert (ROOT / dockerfile).is_file()
        service_name = dockerfile.split("/")[0]
        assert service_name in BY_NAME
        # One tag per Dockerfile, so the one-shot steps reuse the servers' image.
        assert images.setdefault(dockerfile, spec["image"]) == spec["image"]
    assert len(images) == len(SERVICES)


def test_settings_come_from_the_committed_env_example_then_a_local_env(
    compose: dict[str, Any],
) -> None:
    for name, spec in compose["services"].items():
        if name in BACKING:
            continue
        assert spec["env_file"] == [
            {"path": ".env.example", "required": True},
            {"path": ".env", "required": False},
        ], name


def test_every_setting_named_is_one_a_service_reads(compose: dict[str, Any]) -> None:
    known = settings_names()
    example = read_dotenv(ENV_EXAMPLE)
    assert set(example) <= known, set(example) - known
    commented = {
        line.lstrip("# ").partition("=")[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.startswith("# ") and "=" in line and line[2:3].isupper()
    }
    compose_only = {"POSTGRES_PASSWORD", "SHOP_PORT"}  # read by compose itself, not a service
    assert commented - compose_only <= known, commented - known
    for name, spec in compose["services"].items():
        if name not in BACKING:
            assert set(spec.get("environment", {})) <= known, name


def test_env_example_holds_no_secret_and_no_container_specific_path() -> None:
    example = read_dotenv(ENV_EXAMPLE)
    for name in example:
        assert "PASSWORD" not in name and "DATABASE_URL" not in name and "KEY" not in name
        assert not name.endswith(("_HOST", "_PORT")) and name not in ("DATA_DIR", "REDIS_URL")


def test_every_variable_the_compose_file_uses_has_a_default_or_is_documented() -> None:
    documented = ENV_EXAMPLE.read_text()
    for name in compose_variables():
        has_default = f"${{{name}:-" in COMPOSE_FILE.read_text()
        assert has_default or name in documented, name


def test_servers_are_locked_down(compose: dict[str, Any]) -> None:
    for service in SERVICES:
        spec = compose["services"][service.name]
        assert spec["read_only"] is True
        assert spec["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in spec["security_opt"]
        assert "user" not in spec, "the image's non-root user is kept"
        assert "privileged" not in spec


def test_keys_live_in_volumes_that_servers_mount_read_only(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = {
        name: {
            entry.split(":")[0]: entry.split(":")[1:]
            for entry in spec.get("volumes", [])
            if ":" in entry
        }
        for name, spec in services.items()
    }
    assert set(mounts["gateway-keys"]) == {"gateway-key", "gateway-public-key"}
    assert set(mounts["auth-keys"]) == {"auth-keys"}
    assert set(mounts["auth-service"]) == {"auth-keys", "gateway-public-key"}
    assert set(mounts["order-service-keys"]) == {"order-service-key", "order-service-public-key"}
    assert set(mounts["product-service"]) == {"gateway-public-key", "order-service-public-key"}
    assert set(mounts["order-service"]) == {"gateway-public-key", "order-service-key"}
    assert set(mounts["api-gateway"]) == {"gateway-key", "gateway-public-key"}
    for service in SERVICES:
        for volume, rest in mounts[service.name].items():
            assert rest[-1] == "ro", f"{service.name} mounts {volume} writable"
    # The private half of the gateway's pair reaches no service but the gateway.
    holders = {name for name, volumes in mounts.items() if "gateway-key" in volumes}
    assert holders == {"gateway-keys", "api-gateway"}
    # So does order-service's: product-service gets its public half only.
    holders = {name for name, volumes in mounts.items() if "order-service-key" in volumes}
    assert holders == {"order-service-keys", "order-service"}
    # Where the services look for it: CREDENTIAL_KEYS_DIR (DATA_DIR/keys) / order-service.
    assert mounts["order-service"]["order-service-key"][0] == "/data/keys/order-service"
    assert mounts["product-service"]["order-service-public-key"][0] == "/data/keys/order-service"
    for volume in (
        "auth-keys",
        "gateway-key",
        "gateway-public-key",
        "order-service-key",
        "order-service-public-key",
        "postgres-data",
        "nats-data",
    ):
        assert volume in compose["volumes"]


def test_the_gateway_reaches_the_services_by_their_compose_names(
    compose: dict[str, Any],
) -> None:
    env = compose["services"]["api-gateway"]["environment"]
    assert env["AUTH_SERVICE_URL"] == "http://auth-service:5001"
    assert env["PRODUCT_SERVICE_URL"] == "http://product-service:5002"
    assert env["ORDER_SERVICE_URL"] == "http://order-service:5003"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    orders = compose["services"]["order-service"]["environment"]
    assert orders["PRODUCT_SERVICE_URL"] == "http://product-service:5002"
    # Forwarded-for headers are believed only through TRUSTED_PROXIES (empty by default).
    assert "TRUSTED_PROXIES" not in env
    assert read_dotenv(ENV_EXAMPLE)["TRUSTED_PROXIES"] == ""


def test_postgres_gets_one_database_per_service(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    databases = ",".join(service.settings_prefix.lower() for service in WITH_DATABASE)
    assert postgres["environment"]["POSTGRES_MULTIPLE_DATABASES"] == databases
    script = next(v for v in postgres["volumes"] if "create-databases.sh" in v)
    source, target, mode = script.split(":")
    assert (ROOT / source).is_file() and target.startswith("/docker-entrypoint-initdb.d/")
    assert mode == "ro"
    urls = [
        compose["services"]["migrate-auth"]["environment"]["AUTH_DATABASE_URL"],
        compose["services"]["migrate-product"]["environment"]["PRODUCT_DATABASE_URL"],
        compose["services"]["migrate-order"]["environment"]["ORDER_DATABASE_URL"],
    ]
    assert [url.rsplit("/", 1)[1] for url in urls] == ["auth", "product", "order"]
    assert compose["services"]["auth-service"]["environment"]["AUTH_DATABASE_URL"] == urls[0]
    assert compose["services"]["product-service"]["environment"]["PRODUCT_DATABASE_URL"] == urls[1]
    assert compose["services"]["order-service"]["environment"]["ORDER_DATABASE_URL"] == urls[2]


def test_the_database_creation_script_makes_each_listed_database(tmp_path: Path) -> None:
    psql = tmp_path / "psql"
    psql.write_text('#!/bin/sh\necho "$@" >> "$CALLS"\n')
    psql.chmod(0o755)
    calls = tmp_path / "calls"
    result = subprocess.run(
        ["sh", str(ROOT / "deploy" / "compose" / "create-databases.sh")],
        env={
            "PATH": f"{tmp_path}:/usr/bin:/bin",
            "CALLS": str(calls),
            "POSTGRES_USER": "postgres",
            "POSTGRES_MULTIPLE_DATABASES": "auth,product,order",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    made = calls.read_text().splitlines()
    assert len(made) == 3
    assert 'CREATE DATABASE "auth"' in made[0] and 'CREATE DATABASE "product"' in made[1]
    # "order" is an SQL keyword: the script quotes every name.
    assert 'CREATE DATABASE "order"' in made[2]


def test_nats_runs_jetstream_on_a_volume_unpublished_with_a_healthcheck(
    compose: dict[str, Any],
) -> None:
    nats = compose["services"]["nats"]
    assert nats["image"].startswith("nats:") and "build" not in nats
    command = nats["command"]
    assert "-js" in command, "JetStream: streams, durable consumers, the outbox dedupe"
    store = command[command.index("-sd") + 1]
    assert f"nats-data:{store}" in nats["volumes"], "streams survive a restart"
    assert "ports" not in nats and nats["networks"] == ["internal"]
    assert nats["restart"] == "unless-stopped"
    probe = " ".join(nats["healthcheck"]["test"])
    assert "healthz?js-enabled-only=true" in probe
    monitor = command[command.index("-m") + 1]
    assert f":{monitor}/" in probe


def test_the_services_that_publish_or_consume_events_reach_nats(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("product-service", "order-service"):
        assert services[name]["environment"]["NATS_URL"] == "nats://nats:4222", name
        assert services[name]["depends_on"]["nats"] == {"condition": "service_healthy"}
    # Neither the gateway nor auth-service has events.
    for name in ("api-gateway", "auth-service"):
        assert "NATS_URL" not in services[name]["environment"], name
