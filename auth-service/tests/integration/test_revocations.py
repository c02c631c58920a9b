import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

pytestmark = pytest.mark.anyio


def sid(tokens: dict[str, Any]) -> str:
    sid: str = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]
    return sid


async def revoked(api: Any, **params: str) -> tuple[set[str], str]:
    response = await api.client.get("/internal/revocations", params=params)
    assert response.status_code == 200
    body = response.json()
    assert body["as_of"].endswith("Z")
    return {entry["sid"] for entry in body["revoked_sessions"]}, body["as_of"]


async def test_a_logged_out_session_is_listed(api):
    _, tokens = await api.new_user()
    _, alive = await api.new_user()
    await api.client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    sids, _ = await revoked(api)
    assert sid(tokens) in sids
    assert sid(alive) not in sids


async def test_only_revocations_after_since_are_listed(api):
    _, before = await api.new_user()
    await api.client.post("/auth/logout", json={"refresh_token": before["refresh_token"]})
    _, as_of = await revoked(api)
    _, after = await api.new_user()
    await api.client.post("/auth/logout", json={"refresh_token": after["refresh_token"]})
    sids, _ = await revoked(api, since=as_of)
    assert sids == {sid(after)}


async def test_a_role_change_lists_every_session_of_that_user(api):
    user, first = await api.new_user()
    second = await api.login(user["email"])
    await api.set_role(user["id"], "ADMIN")
    sids, _ = await revoked(api)
    assert {sid(first), sid(second)} <= sids


@pytest.mark.parametrize(
    "since",
    [
        pytest.param("0001-01-01T00:00:00+14:00", id="year 1"),
        pytest.param("9999-12-31T23:59:59-14:00", id="year 9999"),
        pytest.param((datetime.now(UTC) - timedelta(days=30)).isoformat(), id="long ago"),
        pytest.param("2026-01-01T00:00:00", id="naive"),
    ],
)
async def test_any_since_value_is_answered(api, since):
    await revoked(api, since=since)


async def test_a_since_that_is_not_a_time_returns_422(api):
    response = await api.client.get("/internal/revocations", params={"since": "yesterday"})
    assert response.status_code == 422


async def test_a_session_ended_by_refresh_token_reuse_is_listed(api):
    _, tokens = await api.new_user()
    await api.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    await api.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    sids, _ = await revoked(api)
    assert sid(tokens) in sids


async def test_a_demotion_lists_every_session_of_that_user(api):
    user, first = await api.new_user()
    await api.set_role(user["id"], "ADMIN")
    promoted = await api.login(user["email"])
    second = await api.login(user["email"])
    _, as_of = await revoked(api)
    assert (await api.set_role(user["id"], "USER")).status_code == 200
    sids, _ = await revoked(api, since=as_of)
    assert sids == {sid(promoted), sid(second)}
    assert sid(first) not in sids  # revoked earlier, by the promotion


async def test_setting_the_same_role_lists_nothing(api):
    user, _ = await api.new_user()
    _, as_of = await revoked(api)
    assert (await api.set_role(user["id"], "USER")).status_code == 200
    sids, _ = await revoked(api, since=as_of)
    assert sids == set()


async def test_revocations_older_than_any_live_access_token_are_not_listed(api):
    _, tokens = await api.new_user()
    await api.client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    retention = api.settings.revocation_retention_seconds
    api.app.state.clock = lambda: datetime.now(UTC) + timedelta(seconds=retention + 1)
    sids, _ = await revoked(api, since="2000-01-01T00:00:00Z")
    assert sid(tokens) not in sids


async def test_logins_racing_a_demotion_get_user_tokens_or_revoked_sessions(api):
    user, _ = await api.new_user()
    await api.set_role(user["id"], "ADMIN")
    admin = api.bearer(await api.admin_tokens())
    _, as_of = await revoked(api)

    async def login() -> dict[str, Any]:
        response = await api.client.post(
            "/auth/login", json={"email": user["email"], "password": api.PASSWORD}
        )
        assert response.status_code == 200
        claims: dict[str, Any] = jwt.decode(
            response.json()["access_token"], options={"verify_signature": False}
        )
        return claims

    async def demote() -> None:
        await asyncio.sleep(0.005)
        response = await api.client.patch(
            f"/auth/users/{user['id']}", json={"role": "USER"}, headers=admin
        )
        assert response.status_code == 200

    logins = [asyncio.create_task(login()) for _ in range(12)]
    await demote()
    issued = [await task for task in logins]
    sids, _ = await revoked(api, since=as_of)
    # An ADMIN token issued around the demotion must belong to a revoked session.
    stale = [c for c in issued if c["role"] == "ADMIN" and c["sid"] not in sids]
    assert stale == []
