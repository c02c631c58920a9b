"""Sessions end when idle for REFRESH_IDLE_SECONDS or REFRESH_ABSOLUTE_SECONDS after login.

(test_refresh.py has the basic idle and absolute cases.)"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

pytestmark = pytest.mark.anyio
LIMITS = {"refresh_idle_seconds": 3600, "refresh_absolute_seconds": 3 * 3600}


def later(minutes: float) -> Callable[[], datetime]:
    return lambda: datetime.now(UTC) + timedelta(minutes=minutes)


async def refresh(api: Any, token: str) -> httpx.Response:
    response: httpx.Response = await api.client.post("/auth/refresh", json={"refresh_token": token})
    return response


async def test_each_refresh_restarts_the_idle_clock(start_api):
    async with start_api(**LIMITS) as api:
        _, tokens = await api.new_user()
        state = api.app.state
        current = tokens["refresh_token"]
        for minutes in (50, 100, 150):  # 150 minutes after login, never 60 idle
            state.clock = later(minutes)
            response = await refresh(api, current)
            assert response.status_code == 200, minutes
            current = response.json()["refresh_token"]


@pytest.mark.parametrize(
    ("minutes", "status"),
    [
        pytest.param(179, 200, id="just before the absolute limit"),
        pytest.param(181, 401, id="just after the absolute limit"),
    ],
)
async def test_the_absolute_limit_counts_from_login(start_api, minutes, status):
    async with start_api(**LIMITS) as api:
        _, tokens = await api.new_user()
        state = api.app.state
        current = tokens["refresh_token"]
        for step in range(50, minutes, 50):
            state.clock = later(step)
            current = (await refresh(api, current)).json()["refresh_token"]
        state.clock = later(minutes)
        assert (await refresh(api, current)).status_code == status


async def test_an_expired_session_is_not_a_revocation(start_api):
    async with start_api(**LIMITS) as api:
        _, tokens = await api.new_user()
        api.app.state.clock = later(61)
        assert (await refresh(api, tokens["refresh_token"])).status_code == 401
        # Its access tokens end at their own exp; nothing is sent to the gateways.
        listed = (await api.client.get("/internal/revocations")).json()["revoked_sessions"]
        sid = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]
        assert sid not in {entry["sid"] for entry in listed}


async def test_logout_of_an_expired_session_still_returns_204(start_api):
    async with start_api(**LIMITS) as api:
        _, tokens = await api.new_user()
        api.app.state.clock = later(181)
        response = await api.client.post(
            "/auth/logout", json={"refresh_token": tokens["refresh_token"]}
        )
        assert response.status_code == 204
