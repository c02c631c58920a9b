"""Revoked sessions: their access tokens get 401 once the gateway learns of them, cached
or not. How soon is the bench's business; here a generous bound only stops a hung test."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from redis.asyncio import Redis

from shop_common.testing import redis_url

pytestmark = pytest.mark.anyio

ME = "/auth/me"


# A timeout, not a speed claim: the poll runs every second, a busy machine is slower.
EVENTUALLY = 30.0


async def refused_eventually(client: httpx.AsyncClient, headers: dict[str, str]):
    """The 401 that a revoked token meets, once the gateway has learnt of the revocation."""
    deadline = time.monotonic() + EVENTUALLY
    while True:
        response = await client.get(ME, headers=headers)
        if response.status_code == 401 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.05)


def expect_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="shop", error="invalid_token"'


async def test_a_cached_session_revoked_at_auth_service_is_refused_and_others_are_not(
    make_settings, open_gateway, tokens, auth_upstream
) -> None:
    doomed, other = tokens.bearer(sid=str(uuid.uuid4())), tokens.bearer()
    async with open_gateway(make_settings()) as client:
        assert (await client.get(ME, headers=doomed)).status_code == 200  # now cached
        auth_upstream.revoke(_sid(doomed))
        response = await refused_eventually(client, doomed)
        assert (await client.get(ME, headers=other)).status_code == 200
    expect_invalid_token(response)


async def test_the_poll_asks_with_a_gateway_credential_and_a_moving_since(
    make_settings, open_gateway, auth_upstream
) -> None:
    async with open_gateway(make_settings(revocation_poll_seconds=0.05)):
        while len(auth_upstream.revocation_polls) < 3:
            await asyncio.sleep(0.02)
    polls = auth_upstream.revocation_polls
    assert all(p.credential_claims()["aud"] == "auth-service" for p in polls)
    sinces = [datetime.fromisoformat(parse_qs(p.query.decode())["since"][0]) for p in polls]
    answered = [datetime.fromisoformat(as_of) for as_of in auth_upstream.revocations_as_of]
    # The first asks for the access-token lifetime and more; each later one for what was
    # revoked since a minute before the previous answer's as_of (an overlap of a minute).
    assert time.time() - sinces[0].timestamp() > 900
    for previous, since in zip(answered[:2], sinces[1:3], strict=True):
        assert (previous - since).total_seconds() == pytest.approx(60, abs=0.001)


@pytest.mark.parametrize(
    "path", ["/internal/revocations", "/internal/revocations?since=x", "/internal"]
)
async def test_internal_endpoints_are_not_reachable_by_clients(client, auth_upstream, path):
    response = await client.get(path)
    assert response.status_code == 404
    assert auth_upstream.forwarded == []


def _sid(headers: dict[str, str]) -> str:
    import jwt

    token = headers["Authorization"].removeprefix("Bearer ")
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return str(claims["sid"])


def redis_options() -> dict[str, Any]:
    run = uuid.uuid4().hex
    return {
        "redis_url": redis_url(),
        "rate_limit_key_prefix": f"test:{run}:limits",
        "revocation_redis_key": f"test:{run}:revoked",
    }


@pytest.mark.redis
async def test_a_sid_added_to_the_redis_set_is_refused_without_polling_auth_service(
    make_settings, open_gateway, tokens, auth_upstream
) -> None:
    settings = make_settings(**redis_options())
    key = settings.revocation_redis_key
    redis = Redis.from_url(settings.redis_url or "")
    sid = str(uuid.uuid4())
    doomed = tokens.bearer(sid=sid)
    try:
        await redis.set(f"{key}:publisher", str(time.time()), ex=30)  # a publisher is alive
        async with open_gateway(settings) as client:
            assert (await client.get(ME, headers=doomed)).status_code == 200  # cached
            await redis.zadd(key, {sid: time.time()})
            response = await refused_eventually(client, doomed)
            assert (await client.get(ME, headers=tokens.bearer())).status_code == 200
    finally:
        await redis.delete(key, f"{key}:publisher")
        await redis.aclose()
    expect_invalid_token(response)
    # With a live publisher, Redis is the only source: auth-service is not polled.
    assert auth_upstream.revocation_polls == []


@pytest.mark.redis
async def test_a_starting_gateway_loads_the_revocations_of_the_token_lifetime(
    make_settings, open_gateway, tokens
) -> None:
    settings = make_settings(**redis_options())
    key = settings.revocation_redis_key
    recent, ancient = str(uuid.uuid4()), str(uuid.uuid4())
    redis = Redis.from_url(settings.redis_url or "")
    try:
        # Revoked 5 minutes ago: its tokens may still live. An hour ago: none can.
        await redis.zadd(key, {recent: time.time() - 300, ancient: time.time() - 3600})
        async with open_gateway(settings) as client:
            response = await refused_eventually(client, tokens.bearer(sid=recent))
            expect_invalid_token(response)
            assert (await client.get(ME, headers=tokens.bearer(sid=ancient))).status_code == 200
    finally:
        await redis.delete(key)
        await redis.aclose()


@pytest.mark.redis
async def test_without_a_live_publisher_auth_service_is_polled_as_well(
    make_settings, open_gateway, tokens, auth_upstream
) -> None:
    settings = make_settings(**redis_options(), revocation_poll_seconds=0.1)
    doomed = tokens.bearer()
    async with open_gateway(settings) as client:
        assert (await client.get(ME, headers=doomed)).status_code == 200
        auth_upstream.revoke(_sid(doomed))
        expect_invalid_token(await refused_eventually(client, doomed))
    assert auth_upstream.revocation_polls


async def test_an_unreachable_redis_leaves_revocations_to_the_poll(
    make_settings, open_gateway, tokens, auth_upstream, refused_url
) -> None:
    closed_port = refused_url.rsplit(":", 1)[1]
    settings = make_settings(redis_url=f"redis://127.0.0.1:{closed_port}/0")
    doomed = tokens.bearer()
    async with open_gateway(settings) as client:
        assert (await client.get(ME, headers=doomed)).status_code == 200
        auth_upstream.revoke(_sid(doomed))
        expect_invalid_token(await refused_eventually(client, doomed))
