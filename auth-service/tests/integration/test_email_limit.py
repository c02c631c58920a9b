"""A per-email limit the gateway found exhausted: 429 after validation, nothing done."""

import pytest

from shop_common.testing import random_email

pytestmark = pytest.mark.anyio


def limited(api, retry_after: int = 42) -> dict[str, str]:
    headers: dict[str, str] = api.gateway.headers("auth-service", email_retry_after=retry_after)
    return headers


async def test_login_with_an_exhausted_email_limit_is_429_even_with_the_right_password(api):
    user = await api.register()
    body = {"email": user["email"], "password": api.PASSWORD}
    response = await api.client.post("/auth/login", json=body, headers=limited(api))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "42"
    assert response.headers["content-type"] == "application/problem+json"
    assert "access_token" not in response.text


async def test_registration_with_an_exhausted_email_limit_creates_nothing(api):
    email = random_email()
    body = {"name": "N", "email": email, "password": api.PASSWORD}
    response = await api.client.post("/auth/register", json=body, headers=limited(api, 0))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert (await api.client.post("/auth/register", json=body)).status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/auth/login", {"email": "a@example.com"}, id="login-missing-password"),
        pytest.param(
            "/auth/register",
            {"name": "N", "email": "a@example.com", "password": "x" * 8, "role": "ADMIN"},
            id="register-with-role",
        ),
    ],
)
async def test_an_invalid_body_is_422_before_the_email_limit(api, path, body):
    response = await api.client.post(path, json=body, headers=limited(api))
    assert response.status_code == 422
