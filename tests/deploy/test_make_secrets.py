"""deploy/k8s/make_secrets.py creates exactly the Secrets the manifests reference."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_common.services import WITH_DATABASE
from tests.deploy.conftest import K8S, OVERLAYS, of_kind, referenced_secrets

SCRIPT = K8S / "make_secrets.py"
ENV = {
    # One database URL per listed service (AUTH_DATABASE_URL, ...), then Redis.
    **{
        str(service.database_setting): f"postgresql+asyncpg://u:pw@db.example:5432/{service.name}"
        for service in WITH_DATABASE
    },
    "REDIS_URL": "redis://redis.example:6379/0",
}


def run(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def decoded(secret: dict[str, Any]) -> dict[str, bytes]:
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


@pytest.fixture(scope="module")
def created() -> dict[str, dict[str, Any]]:
    result = run("init", "--namespace", "shop", env=ENV)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["kind"] == "List"
    return {item["metadata"]["name"]: item for item in document["items"]}


@pytest.mark.parametrize("overlay", [pytest.param(o.name, id=o.name) for o in OVERLAYS])
def test_init_creates_every_secret_the_pods_need_with_the_keys_they_read(
    created: dict[str, dict[str, Any]], rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    for name, keys in referenced_secrets(rendered[overlay]).items():
        assert name in created, f"{name} is referenced but never created"
        assert keys <= set(created[name]["data"]), name


def test_init_output_is_valid_kubernetes(created: dict[str, dict[str, Any]]) -> None:
    for secret in created.values():
        kubernetes_validate.validate(secret, kubernetes_validate.latest_version(), strict=True)
        assert secret["metadata"]["namespace"] == "shop"


@pytest.mark.parametrize("minter", ["gateway", "order-service"])
def test_init_creates_credential_key_pairs_that_belong_together(
    created: dict[str, dict[str, Any]], minter: str
) -> None:
    pair = decoded(created[f"{minter}-credential-key"])
    public = decoded(created[f"{minter}-public-key"])["public.pem"]
    assert pair["public.pem"] == public
    private = serialization.load_pem_private_key(pair["private.pem"], password=None)
    assert isinstance(private, Ed25519PrivateKey)
    assert private.public_key() == serialization.load_pem_public_key(public)
    others = {
        decoded(created[f"{m}-public-key"])["public.pem"] for m in ("gateway", "order-service")
    }
    assert len(others) == 2  # each minter its own pair


def test_init_creates_key_pairs_that_belong_together(created: dict[str, dict[str, Any]]) -> None:
    signing = decoded(created["auth-signing-keys"])
    assert len(signing) == 1
    ((kid, pem),) = signing.items()
    assert kid.endswith(".pem")
    assert isinstance(serialization.load_pem_private_key(pem, password=None), Ed25519PrivateKey)
    urls = {name: value for name, value in ENV.items() if name.endswith("_DATABASE_URL")}
    assert decoded(created["shop-database"]) == {
        name: value.encode() for name, value in urls.items()
    }
    assert "auth-admin" not in created


def test_init_adds_the_admin_secret_only_when_both_values_are_set() -> None:
    both = run("init", env={**ENV, "ADMIN_EMAIL": "a@example.com", "ADMIN_PASSWORD": "p" * 16})
    names = [item["metadata"]["name"] for item in json.loads(both.stdout)["items"]]
    assert "auth-admin" in names


def test_init_refuses_to_run_without_the_database_and_redis_urls() -> None:
    result = run("init", env={"REDIS_URL": ENV["REDIS_URL"]})
    assert result.returncode != 0
    assert "AUTH_DATABASE_URL" in result.stderr and "PRODUCT_DATABASE_URL" in result.stderr
    assert "ORDER_DATABASE_URL" in result.stderr


def test_rotate_adds_a_key_and_keeps_the_current_one(created: dict[str, dict[str, Any]]) -> None:
    current = created["auth-signing-keys"]
    result = run("rotate", env={}, stdin=json.dumps(current))
    assert result.returncode == 0, result.stderr
    rotated = json.loads(result.stdout)
    assert rotated["metadata"]["name"] == "auth-signing-keys"
    assert rotated["metadata"]["namespace"] == "shop"
    old = set(current["data"])
    assert old < set(rotated["data"]) and len(rotated["data"]) == 2
    assert all(rotated["data"][kid] == current["data"][kid] for kid in old)


def test_the_secrets_are_not_in_the_manifests(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for documents in rendered.values():
        assert of_kind(documents, "Secret") == {}, "Secrets are created apart, never committed"
