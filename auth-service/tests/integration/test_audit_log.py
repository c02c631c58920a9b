"""Security events: one JSON line each, with the request id, and no secret in any line."""

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from auth_service.audit import email_hash
from shop_common.logging import JsonFormatter
from shop_common.testing import random_email

pytestmark = pytest.mark.anyio


class Lines(logging.Handler):
    """Every log line as the service would write it (formatted while the request runs)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("auth-service"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def events(self, name: str) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in self.lines]
        return [line for line in parsed if line.get("security_event") == name]

    def assert_free_of(self, *secrets: str) -> None:
        assert self.lines, "nothing was logged"
        for secret in secrets:
            leaks = [line for line in self.lines if secret in line]
            assert not leaks, f"a secret appears in the log: {leaks}"


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # the default LOG_LEVEL; DEBUG shows drivers' SQL parameters
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_failed_login_is_one_line_with_the_request_id_and_no_secret(api, log_lines):
    user = await api.register()
    response = await api.client.post(
        "/auth/login",
        json={"email": user["email"].upper(), "password": "wrong secret pw"},
        headers={"x-request-id": "login-attempt-1"},
    )
    assert response.status_code == 401
    (event,) = log_lines.events("login_failed")
    assert event["request_id"] == "login-attempt-1"
    assert event["reason"] == "wrong_password"
    assert event["account_id"] == user["id"]
    assert event["email_hash"] == email_hash(user["email"])
    log_lines.assert_free_of("wrong secret pw", user["email"], api.PASSWORD)


async def test_a_login_with_an_unknown_email_names_no_account(api, log_lines):
    email = random_email()
    await api.client.post("/auth/login", json={"email": email, "password": "some password"})
    (event,) = log_lines.events("login_failed")
    assert (event["reason"], event["account_id"]) == ("unknown_email", None)
    assert event["email_hash"] == email_hash(email)
    log_lines.assert_free_of(email, "some password")


async def test_a_refresh_token_reuse_is_one_line_with_the_request_id_and_no_token(api, log_lines):
    user, tokens = await api.new_user()
    renewed = await api.client.post(
        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    reuse = await api.client.post(
        "/auth/refresh",
        json={"refresh_token": tokens["refresh_token"]},
        headers={"x-request-id": "replayed-refresh"},
    )
    assert reuse.status_code == 401
    (event,) = log_lines.events("refresh_token_reuse")
    assert event["request_id"] == "replayed-refresh"
    assert event["account_id"] == user["id"]
    assert event["session_revoked"] is True
    log_lines.assert_free_of(
        tokens["refresh_token"],
        tokens["access_token"],
        renewed.json()["refresh_token"],
        renewed.json()["access_token"],
    )


async def test_a_logout_is_a_session_revoked_line(api, log_lines):
    user, tokens = await api.new_user()
    await api.client.post(
        "/auth/logout",
        json={"refresh_token": tokens["refresh_token"]},
        headers={"x-request-id": "bye"},
    )
    (event,) = log_lines.events("session_revoked")
    assert (event["request_id"], event["reason"], event["account_id"]) == (
        "bye",
        "logout",
        user["id"],
    )
    log_lines.assert_free_of(tokens["refresh_token"], tokens["access_token"])


async def test_a_role_change_is_one_line_naming_who_changed_what(api, log_lines):
    user, _ = await api.new_user()
    admin = await api.admin_tokens()
    await api.client.patch(
        f"/auth/users/{user['id']}",
        json={"role": "ADMIN"},
        headers={**api.bearer(admin), "x-request-id": "promote"},
    )
    (event,) = log_lines.events("role_changed")
    assert event["request_id"] == "promote"
    assert (event["account_id"], event["old_role"], event["new_role"]) == (
        user["id"],
        "USER",
        "ADMIN",
    )
    assert event["sessions_revoked"] == 1
    log_lines.assert_free_of(admin["access_token"], admin["refresh_token"])


async def test_the_admin_bootstrap_and_the_first_key_are_logged_without_the_password(
    start_api, log_lines
):
    async with start_api(admin_email=random_email(), admin_password="bootstrap secret 9") as api:
        (created,) = log_lines.events("admin_created")
        (key,) = log_lines.events("signing_key_created")
        assert key["kid"] == api.app.state.keyring.keys[0].kid
    assert created["account_id"]
    log_lines.assert_free_of("bootstrap secret 9")


async def test_no_password_or_token_appears_in_any_line_of_a_whole_session(api, log_lines):
    email = random_email()
    password = "a memorable passphrase"
    await api.register(email=email, password=password)
    tokens = await api.login(email, password)
    await api.client.get("/auth/me", headers=api.bearer(tokens))
    renewed = (
        await api.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).json()
    await api.client.post("/auth/login", json={"email": email, "password": password + "!"})
    await api.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    await api.client.post("/auth/logout", json={"refresh_token": renewed["refresh_token"]})
    log_lines.assert_free_of(
        password,
        tokens["access_token"],
        tokens["refresh_token"],
        renewed["access_token"],
        renewed["refresh_token"],
    )
    assert {"login_failed", "refresh_token_reuse"} <= {
        json.loads(line).get("security_event") for line in log_lines.lines
    }
