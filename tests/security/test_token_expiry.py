"""An access token that truly expired, signed by the real key and issued by the real
auth-service (test_token_forgery covers forged `exp` values). The system runs with
ACCESS_TOKEN_TTL_SECONDS=30, the smallest value auth-service accepts, so this waits
about 30 s; the token is used before it expires, so the gateway's cache of verified
tokens must notice the expiry too."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.security.forgery import parts
from tests.security.support import (
    GENEROUS_LIMITS,
    Shop,
    Tokens,
    assert_unauthorized,
    new_user,
    running_shop,
)

pytestmark = pytest.mark.e2e

TTL_SECONDS = 30


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    env = {**GENEROUS_LIMITS, "ACCESS_TOKEN_TTL_SECONDS": str(TTL_SECONDS)}
    with running_shop(tmp_path_factory.mktemp("expiry"), **env) as running:
        yield running


def test_expired_access_token_is_refused_and_the_refresh_token_still_works(
    gateway: httpx.Client,
) -> None:
    _, tokens = new_user(gateway)
    claims = parts(tokens.access_token)[1]
    assert claims["exp"] - claims["iat"] == TTL_SECONDS
    assert gateway.get("/auth/me", headers=tokens.headers).status_code == 200
    assert gateway.get("/products?limit=1", headers=tokens.headers).status_code == 200

    time.sleep(max(0.0, claims["exp"] - time.time()) + 1.5)
    for path in ("/auth/me", "/products?limit=1"):
        assert_unauthorized(gateway.get(path, headers=tokens.headers))
    create = gateway.post("/products", headers=tokens.headers, json={"name": "Late", "price": 1})
    assert_unauthorized(create)

    renewed = gateway.post("/auth/refresh", json={"refresh_token": tokens.refresh_token})
    assert renewed.status_code == 200, renewed.text
    fresh = Tokens(renewed.json()["access_token"], renewed.json()["refresh_token"])
    assert gateway.get("/auth/me", headers=fresh.headers).status_code == 200
