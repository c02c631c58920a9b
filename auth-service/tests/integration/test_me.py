import uuid

import pytest

pytestmark = pytest.mark.anyio


async def test_me_returns_the_signed_in_user(api):
    user, tokens = await api.new_user()
    response = await api.client.get("/auth/me", headers=api.bearer(tokens))
    assert response.status_code == 200
    assert response.json() == user


async def test_me_without_a_user_returns_401(api):
    response = await api.client.get("/auth/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "user_id",
    [
        pytest.param(str(uuid.uuid4()), id="unknown id"),
        pytest.param("not-a-uuid", id="malformed id"),
    ],
)
async def test_me_for_an_account_that_does_not_exist_returns_401(api, user_id):
    response = await api.client.get("/auth/me", headers=api.caller(user_id, "USER"))
    assert response.status_code == 401


async def test_me_after_logout_of_that_session_returns_401(api):
    _, tokens = await api.new_user()
    await api.client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    response = await api.client.get("/auth/me", headers=api.bearer(tokens))
    assert response.status_code == 401


async def test_me_answers_405_to_post(api):
    response = await api.client.post("/auth/me", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
