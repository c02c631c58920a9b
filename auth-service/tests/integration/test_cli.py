"""`python -m auth_service ...` as an operator runs it."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import pytest

from auth_service.signing_keys import key_ids
from shop_common.testing import random_email, write_gateway_keys
from testsupport.processes import free_port, wait_until_answers


def run(
    tmp_path: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ADMIN_", "AUTH_"))}
    environment.update({"DATA_DIR": str(tmp_path), "SHOP_TESTING": "true", "BCRYPT_ROUNDS": "4"})
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "auth_service", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_keys_init_creates_one_key_and_keeps_it(tmp_path):
    first = run(tmp_path, "keys", "init")
    assert first.returncode == 0, first.stderr
    kids = key_ids(tmp_path / "keys" / "auth")
    assert len(kids) == 1 and kids[0] in first.stdout
    again = run(tmp_path, "keys", "init")
    assert again.returncode == 0
    assert "already present" in again.stdout
    assert key_ids(tmp_path / "keys" / "auth") == kids


def test_keys_rotate_adds_a_newer_key(tmp_path):
    run(tmp_path, "keys", "init")
    (old,) = key_ids(tmp_path / "keys" / "auth")
    result = run(tmp_path, "keys", "rotate")
    assert result.returncode == 0, result.stderr
    kids = key_ids(tmp_path / "keys" / "auth")
    assert kids[0] == old and len(kids) == 2
    assert kids[1] in result.stdout


@pytest.mark.anyio
async def test_keys_rotate_prints_the_new_kid_and_a_live_old_token_still_verifies(api, tmp_path):
    user, old_tokens = await api.new_user()
    old_kid = jwt.get_unverified_header(old_tokens["access_token"])["kid"]
    result = run(tmp_path, "keys", "rotate")
    assert result.returncode == 0, result.stderr
    new_kid = key_ids(api.settings.keys_dir)[-1]
    assert new_kid != old_kid
    assert f"new signing key {new_kid}" in result.stdout
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    rotated = [e for e in events if e.get("security_event") == "signing_key_rotated"]
    assert [e["kid"] for e in rotated] == [new_kid]

    api.app.state.keyring.reload()  # what every replica's reload task does
    document = (await api.client.get("/auth/jwks.json")).json()
    keys = {key["kid"]: key for key in document["keys"]}
    assert {old_kid, new_kid} <= set(keys)
    claims = jwt.decode(
        old_tokens["access_token"],
        jwt.PyJWK(keys[old_kid]).key,
        algorithms=["EdDSA"],
        audience="shop-api",
        issuer="shop-auth",
    )
    assert claims["sub"] == user["id"]
    new_tokens = await api.login(user["email"])
    assert jwt.get_unverified_header(new_tokens["access_token"])["kid"] == new_kid


def test_migrate_brings_a_new_sqlite_database_to_the_latest_revision(tmp_path):
    result = run(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "auth.db").exists()


def test_migrate_reports_an_unreachable_database_in_one_line(tmp_path):
    result = run(
        tmp_path, "migrate", AUTH_DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/none"
    )
    assert result.returncode == 2
    assert "migration failed" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"ADMIN_PASSWORD": "short"}, "ADMIN_PASSWORD", id="short admin password"),
        pytest.param({"ADMIN_EMAIL": "nope"}, "ADMIN_EMAIL", id="invalid admin email"),
        pytest.param(
            {"SHOP_TESTING": "false"}, "BCRYPT_ROUNDS=4 is below 12", id="low bcrypt cost"
        ),
        pytest.param(
            {"ACCESS_TOKEN_TTL_SECONDS": "3600"}, "ACCESS_TOKEN_TTL_SECONDS", id="long ttl"
        ),
    ],
)
def test_serve_with_an_unusable_setting_exits_with_a_clear_message(tmp_path, env, message):
    write_gateway_keys(tmp_path)
    values = {"ADMIN_EMAIL": random_email(), "ADMIN_PASSWORD": "admin password 1"} | env
    result = run(tmp_path, "serve", AUTH_PORT="0", **values)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "short" not in result.stderr or "ADMIN_PASSWORD" not in env


def test_serve_without_the_gateway_key_exits_with_a_clear_message(tmp_path):
    result = run(tmp_path, "serve", AUTH_PORT="0")
    assert result.returncode == 2
    assert "gateway's public key" in result.stderr


def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path):
    write_gateway_keys(tmp_path)
    assert run(tmp_path, "migrate").returncode == 0
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ADMIN_", "AUTH_"))}
    environment.update(
        {
            "DATA_DIR": str(tmp_path),
            "SHOP_TESTING": "true",
            "BCRYPT_ROUNDS": "4",
            "AUTH_PORT": str(port),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "auth_service", "serve"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        response = wait_until_answers(f"http://127.0.0.1:{port}/ready", process)
        assert response.status_code == 200
        assert "server" not in response.headers
        refused = httpx.get(f"http://127.0.0.1:{port}/auth/me", timeout=5)
        assert refused.status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stdout
    assert '"service":"auth-service"' in stdout.replace(" ", "")
