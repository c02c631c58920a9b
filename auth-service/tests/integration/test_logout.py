from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def logout(api: Any, refresh_token: str) -> httpx.Response:
    response: httpx.Response = await api.client.post(
        "/auth/logout", json={"refresh_token": refresh_token}
    )
    return response


async def test_logout_returns_204_and_ends_the_session(api):
    _, tokens = await api.new_user()
    response = await logout(api, tokens["refresh_token"])
    assert response.status_code == 204
    assert response.content == b""
    refreshed = await api.client.post(
        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401


async def test_logout_leaves_the_users_other_sessions_alive(api):
    user, tokens = await api.new_user()
    other = await api.login(user["email"])
    await logout(api, tokens["refresh_token"])
    refreshed = await api.client.post(
        "/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert refreshed.status_code == 200


@pytest.mark.parametrize(
    "token", [pytest.param("never-issued", id="unknown"), pytest.param("", id="empty")]
)
async def test_logout_with_an_unknown_token_returns_204(api, token):
    assert (await logout(api, token)).status_code == 204


async def test_logout_twice_returns_204_both_times(api):
    _, tokens = await api.new_user()
    assert (await logout(api, tokens["refresh_token"])).status_code == 204
    assert (await logout(api, tokens["refresh_token"])).status_code == 204


async def test_logout_with_an_already_rotated_token_ends_the_session(api):
    _, tokens = await api.new_user()
    renewed = await api.client.post(
        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert (await logout(api, tokens["refresh_token"])).status_code == 204
    refreshed = await api.client.post(
        "/auth/refresh", json={"refresh_token": renewed.json()["refresh_token"]}
    )
    assert refreshed.status_code == 401


async def test_logout_without_a_token_returns_422(api):
    assert (await api.client.post("/auth/logout", json={})).status_code == 422


async def test_logout_with_a_non_json_body_returns_415(api):
    response = await api.client.post(
        "/auth/logout", content=b"x", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
