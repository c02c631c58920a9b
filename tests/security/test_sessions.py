"""Stolen sessions (API2): logout, refresh-token reuse and role changes reach the access
tokens within 5 s; a refresh token works once. This system has no Redis, so revocations
travel by the gateway's poll of auth-service (test_shared_limits covers Redis)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.security.support import (
    Shop,
    Tokens,
    admin_tokens,
    assert_unauthorized,
    create_product,
    login,
    new_user,
    register,
    wait_for_status,
)

pytestmark = pytest.mark.e2e


def refresh(gateway: httpx.Client, refresh_token: str) -> httpx.Response:
    return gateway.post("/auth/refresh", json={"refresh_token": refresh_token})


def gateway_refuses(gateway: httpx.Client, tokens: Tokens) -> None:
    """Wait until the gateway itself refuses the token. A public read is the probe: only
    the gateway checks a token there (auth-service would refuse /auth/me on its own)."""
    wait_for_status(lambda: gateway.get("/products?limit=1", headers=tokens.headers), 401)


def test_logout_kills_the_access_token_within_5_seconds(gateway: httpx.Client) -> None:
    _, tokens = new_user(gateway)
    assert gateway.get("/auth/me", headers=tokens.headers).status_code == 200  # now cached
    logout = gateway.post("/auth/logout", json={"refresh_token": tokens.refresh_token})
    assert logout.status_code == 204
    gateway_refuses(gateway, tokens)
    assert_unauthorized(gateway.get("/auth/me", headers=tokens.headers))
    create = gateway.post("/products", headers=tokens.headers, json={"name": "x", "price": 1})
    assert_unauthorized(create)
    assert refresh(gateway, tokens.refresh_token).status_code == 401


def test_revoked_session_dies_while_the_users_other_sessions_live(gateway: httpx.Client) -> None:
    account, stolen = new_user(gateway)
    other = login(gateway, account.email, account.password)
    gateway.post("/auth/logout", json={"refresh_token": stolen.refresh_token})
    gateway_refuses(gateway, stolen)
    assert gateway.get("/auth/me", headers=other.headers).status_code == 200
    assert gateway.get("/products?limit=1", headers=other.headers).status_code == 200
    assert refresh(gateway, other.refresh_token).status_code == 200
    # Logging out again, or with a made-up token, says nothing about the session.
    again = gateway.post("/auth/logout", json={"refresh_token": stolen.refresh_token})
    assert again.status_code == 204
    unknown = gateway.post("/auth/logout", json={"refresh_token": "x" * 43})
    assert unknown.status_code == 204


def test_refresh_reuse_revokes_the_whole_session(gateway: httpx.Client) -> None:
    _, first = new_user(gateway)
    rotated = refresh(gateway, first.refresh_token)
    assert rotated.status_code == 200, rotated.text
    second = Tokens(rotated.json()["access_token"], rotated.json()["refresh_token"])
    assert second.refresh_token != first.refresh_token
    assert gateway.get("/auth/me", headers=second.headers).status_code == 200

    replay = refresh(gateway, first.refresh_token)  # the thief replays the used token
    assert replay.status_code == 401
    assert replay.headers["content-type"].startswith("application/problem+json")
    assert "access_token" not in replay.text
    assert refresh(gateway, second.refresh_token).status_code == 401
    for tokens in (first, second):
        gateway_refuses(gateway, tokens)
        assert_unauthorized(gateway.get("/auth/me", headers=tokens.headers))


def test_concurrent_refresh_with_one_token_lets_exactly_one_succeed(shop: Shop) -> None:
    with shop.client() as client:
        _, tokens = new_user(client)
    racers = 6
    start = threading.Barrier(racers)

    def race(_: int) -> int:
        with shop.client() as client:
            start.wait(timeout=10)
            return refresh(client, tokens.refresh_token).status_code

    with ThreadPoolExecutor(racers) as pool:
        statuses = sorted(pool.map(race, range(racers)))
    assert statuses == [200] + [401] * (racers - 1)


def test_an_access_token_is_not_a_refresh_token(gateway: httpx.Client) -> None:
    _, tokens = new_user(gateway)
    assert refresh(gateway, tokens.access_token).status_code == 401
    assert gateway.get("/auth/me", headers=tokens.headers).status_code == 200


def test_demotion_takes_admin_rights_away_within_5_seconds(gateway: httpx.Client) -> None:
    admin = admin_tokens(gateway)
    deputy = register(gateway)
    promoted = gateway.patch(
        f"/auth/users/{deputy.id}", headers=admin.headers, json={"role": "ADMIN"}
    )
    assert promoted.status_code == 200, promoted.text
    deputy_tokens = login(gateway, deputy.email, deputy.password)
    assert gateway.get("/auth/users", headers=deputy_tokens.headers).status_code == 200

    demoted = gateway.patch(
        f"/auth/users/{deputy.id}", headers=admin.headers, json={"role": "USER"}
    )
    assert demoted.status_code == 200, demoted.text
    gateway_refuses(gateway, deputy_tokens)
    old = deputy_tokens.headers
    assert_unauthorized(gateway.get("/auth/users", headers=old))
    product = create_product(gateway, admin)
    assert_unauthorized(gateway.delete(f"/products/{product['id']}", headers=old))
    assert gateway.get(f"/products/{product['id']}").status_code == 200
    assert refresh(gateway, deputy_tokens.refresh_token).status_code == 401

    fresh = login(gateway, deputy.email, deputy.password)
    assert gateway.get("/auth/users", headers=fresh.headers).status_code == 403
    assert gateway.delete(f"/products/{product['id']}", headers=fresh.headers).status_code == 403
