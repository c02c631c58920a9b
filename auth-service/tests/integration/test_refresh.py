import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

pytestmark = pytest.mark.anyio


def claims(tokens: dict[str, Any]) -> dict[str, Any]:
    return jwt.decode(tokens["access_token"], options={"verify_signature": False})


async def refresh(api: Any, refresh_token: str) -> httpx.Response:
    response: httpx.Response = await api.client.post(
        "/auth/refresh", json={"refresh_token": refresh_token}
    )
    return response


async def test_refresh_rotates_the_refresh_token_within_the_session(api):
    _, tokens = await api.new_user()
    response = await refresh(api, tokens["refresh_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    renewed = response.json()
    assert set(renewed) == {"access_token", "token_type", "expires_in", "refresh_token", "token"}
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert claims(renewed)["sid"] == claims(tokens)["sid"]
    assert claims(renewed)["jti"] != claims(tokens)["jti"]
    assert (await refresh(api, renewed["refresh_token"])).status_code == 200


async def test_tokens_after_a_role_change_carry_the_new_role(api):
    user = await api.register()
    await api.set_role(user["id"], "ADMIN")
    fresh = await api.login(user["email"])
    assert claims(fresh)["role"] == "ADMIN"
    renewed = (await refresh(api, fresh["refresh_token"])).json()
    assert claims(renewed)["role"] == "ADMIN"


async def test_reusing_a_refresh_token_revokes_the_whole_session(api, caplog):
    user, tokens = await api.new_user()
    other_session = await api.login(user["email"])
    first = (await refresh(api, tokens["refresh_token"])).json()
    second = (await refresh(api, first["refresh_token"])).json()

    reuse = await refresh(api, tokens["refresh_token"])
    assert reuse.status_code == 401
    assert reuse.headers["www-authenticate"] == "Bearer"
    # Every token descended from that login is dead, the newest included.
    assert (await refresh(api, second["refresh_token"])).status_code == 401
    assert (await api.client.get("/auth/me", headers=api.bearer(second))).status_code == 401
    # The user's other session lives on.
    assert (await refresh(api, other_session["refresh_token"])).status_code == 200
    events = [
        r for r in caplog.records if getattr(r, "security_event", None) == "refresh_token_reuse"
    ]
    assert len(events) == 1
    assert events[0].session_id == claims(tokens)["sid"]


async def test_concurrent_refreshes_with_one_token_let_exactly_one_succeed(api):
    _, tokens = await api.new_user()
    responses = await asyncio.gather(*(refresh(api, tokens["refresh_token"]) for _ in range(5)))
    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401, 401]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("unknown-token", id="unknown"),
        pytest.param("", id="empty"),
        pytest.param("x" * 5000, id="very long"),
    ],
)
async def test_refresh_with_an_unknown_token_returns_401(api, token):
    response = await refresh(api, token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_refresh_with_an_access_token_returns_401(api):
    _, tokens = await api.new_user()
    assert (await refresh(api, tokens["access_token"])).status_code == 401


async def test_refresh_after_logout_returns_401(api):
    _, tokens = await api.new_user()
    await api.client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert (await refresh(api, tokens["refresh_token"])).status_code == 401


@pytest.mark.parametrize(
    ("idle", "absolute", "later", "status"),
    [
        pytest.param(3600, 7200, timedelta(minutes=59), 200, id="within both limits"),
        pytest.param(3600, 7200, timedelta(minutes=61), 401, id="idle too long"),
    ],
)
async def test_refresh_after_the_idle_limit_returns_401(start_api, idle, absolute, later, status):
    async with start_api(refresh_idle_seconds=idle, refresh_absolute_seconds=absolute) as api:
        _, tokens = await api.new_user()
        state = api.app.state
        state.clock = lambda: datetime.now(UTC) + later
        assert (await refresh(api, tokens["refresh_token"])).status_code == status


async def test_refresh_after_the_absolute_limit_returns_401_however_active(start_api):
    async with start_api(refresh_idle_seconds=3600, refresh_absolute_seconds=7200) as api:
        _, tokens = await api.new_user()
        state = api.app.state
        current = tokens["refresh_token"]
        for minutes in (50, 100):
            state.clock = lambda minutes=minutes: datetime.now(UTC) + timedelta(minutes=minutes)
            response = await refresh(api, current)
            assert response.status_code == 200
            current = response.json()["refresh_token"]
        state.clock = lambda: datetime.now(UTC) + timedelta(minutes=121)
        assert (await refresh(api, current)).status_code == 401


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param({}, id="no token"),
        pytest.param({"refresh_token": None}, id="null"),
        pytest.param({"refresh_token": 1}, id="number"),
        pytest.param({"refresh_token": "a\x00b"}, id="control character"),
        pytest.param({"refresh_token": "a", "sid": "b"}, id="extra field"),
    ],
)
async def test_refresh_with_an_invalid_body_returns_422(api, sent):
    response = await api.client.post("/auth/refresh", json=sent)
    assert response.status_code == 422
