"""Token checks as a client meets them: 401 with a Bearer challenge, keys from the JWKS."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

pytestmark = pytest.mark.anyio

ME = "/auth/me"


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"exp": int(time.time()) - 60}, id="expired"),
        pytest.param({"aud": "another-api"}, id="wrong-audience"),
        pytest.param({"iss": "not-shop-auth"}, id="wrong-issuer"),
        pytest.param({"role": "ROOT"}, id="unknown-role"),
        pytest.param({"sid": None}, id="no-session"),
    ],
)
async def test_a_bad_token_gets_401_invalid_token(client, tokens, auth_upstream, overrides):
    response = await client.get(ME, headers=tokens.bearer(**overrides))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="shop", error="invalid_token"'
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The bearer token is not valid."
    assert auth_upstream.forwarded == []


async def test_a_token_signed_by_another_key_with_a_known_kid_gets_401(
    client, tokens, new_key, auth_upstream
) -> None:
    impostor = new_key()
    impostor.kid = tokens.key.kid
    response = await client.get(ME, headers=tokens.bearer(key=impostor))
    assert response.status_code == 401


async def test_no_token_gets_401_with_a_plain_challenge(client) -> None:
    response = await client.get(ME)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="shop"'


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic dXNlcjpwYXNz", id="basic"),
        pytest.param("Bearer", id="empty-bearer"),
        pytest.param("Bearer not.a.jwt", id="garbage"),
        pytest.param("Token abc", id="other-scheme"),
    ],
)
async def test_an_authorization_that_is_not_a_valid_bearer_token_gets_401(
    client, authorization
) -> None:
    response = await client.get(ME, headers={"Authorization": authorization})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_an_invalid_token_on_a_public_read_gets_401(client, tokens, product_upstream):
    response = await client.get("/products", headers=tokens.bearer(exp=int(time.time()) - 5))
    assert response.status_code == 401
    assert product_upstream.forwarded == []


@pytest.mark.parametrize("path", ["/auth/login", "/auth/register", "/auth/refresh", "/auth/logout"])
async def test_a_stale_token_never_blocks_logging_in_or_refreshing(
    client, tokens, auth_upstream, path
) -> None:
    stale = tokens.bearer(exp=int(time.time()) - 5)
    response = await client.post(path, headers=stale, json={"refresh_token": "r"})
    assert response.status_code == 200
    (request,) = auth_upstream.forwarded
    assert request.header("authorization") is None


async def test_a_valid_token_passes_and_its_user_is_logged(
    client, tokens, caplog: pytest.LogCaptureFixture
) -> None:
    user = str(uuid.uuid4())
    with caplog.at_level("INFO", logger="access"):
        response = await client.get(ME, headers=tokens.bearer(sub=user))
    assert response.status_code == 200
    (line,) = [r for r in caplog.records if r.name == "access"]
    assert line.__dict__["user_id"] == user
    assert line.__dict__["route"] == ME
    assert line.__dict__["status"] == 200


async def test_the_keys_are_fetched_with_a_gateway_credential_and_cached(
    client, tokens, auth_upstream
) -> None:
    for _ in range(3):
        assert (await client.get(ME, headers=tokens.bearer())).status_code == 200
    assert auth_upstream.jwks_fetches == 1
    (fetch,) = [r for r in auth_upstream.requests if r.path == "/auth/jwks.json"]
    assert fetch.header("x-gateway-credential") is not None


async def test_an_unknown_kid_refetches_the_keys_once(client, tokens, new_key, auth_upstream):
    assert (await client.get(ME, headers=tokens.bearer())).status_code == 200
    stranger = new_key()
    for _ in range(4):
        response = await client.get(ME, headers=tokens.bearer(key=stranger))
        assert response.status_code == 401
    # The first fetch was just now, so the refetch interval holds every later one back.
    assert auth_upstream.jwks_fetches == 1


async def test_a_new_key_is_picked_up_by_refetching(
    make_settings, open_gateway, tokens, new_key, auth_upstream
) -> None:
    async with open_gateway(make_settings(jwks_refetch_interval=0)) as client:
        assert (await client.get(ME, headers=tokens.bearer())).status_code == 200
        rotated = new_key()
        auth_upstream.jwks = {"keys": [tokens.key.jwk(), rotated.jwk()]}
        response = await client.get(ME, headers=tokens.bearer(key=rotated))
        assert response.status_code == 200
    assert auth_upstream.jwks_fetches == 2


async def test_unreachable_keys_give_503_rather_than_a_wrong_401(
    make_settings, open_gateway, tokens, refused_url
) -> None:
    async with open_gateway(make_settings(auth_service_url=refused_url)) as client:
        response = await client.get("/products", headers=tokens.bearer())
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_failing_jwks_endpoint_gives_503(client, tokens, auth_upstream) -> None:
    auth_upstream.jwks_status = 500
    response = await client.get(ME, headers=tokens.bearer())
    assert response.status_code == 503
    assert auth_upstream.jwks_fetches == 1


async def test_key_rotation_needs_no_restart_and_old_tokens_live_on(
    make_settings, open_gateway, tokens, new_key, auth_upstream
) -> None:
    old_token = tokens.bearer()
    async with open_gateway(make_settings(jwks_refetch_interval=0.2)) as client:
        assert (await client.get(ME, headers=old_token)).status_code == 200
        rotated = new_key()
        # Not yet published: refused; within the refetch interval no other unknown kid
        # makes the gateway ask auth-service again.
        assert (await client.get(ME, headers=tokens.bearer(key=rotated))).status_code == 401
        fetches = auth_upstream.jwks_fetches
        assert (await client.get(ME, headers=tokens.bearer(key=new_key()))).status_code == 401
        assert auth_upstream.jwks_fetches == fetches
        auth_upstream.jwks = {"keys": [tokens.key.jwk(), rotated.jwk()]}
        await asyncio.sleep(0.25)
        assert (await client.get(ME, headers=tokens.bearer(key=rotated))).status_code == 200
        assert (await client.get(ME, headers=old_token)).status_code == 200
        assert (await client.get(ME, headers=tokens.bearer())).status_code == 200


async def test_a_key_that_leaves_the_jwks_stops_working_after_the_periodic_refresh(
    make_settings, open_gateway, tokens, new_key, auth_upstream
) -> None:
    successor = new_key()
    auth_upstream.jwks = {"keys": [tokens.key.jwk(), successor.jwk()]}
    retired_token = tokens.bearer()
    async with open_gateway(make_settings(jwks_max_age=0.1)) as client:
        assert (await client.get(ME, headers=retired_token)).status_code == 200  # cached
        auth_upstream.jwks = {"keys": [successor.jwk()]}
        for _ in range(40):
            response = await client.get(ME, headers=retired_token)
            if response.status_code == 401:
                break
            await asyncio.sleep(0.05)
        assert response.status_code == 401
        assert (await client.get(ME, headers=tokens.bearer(key=successor))).status_code == 200
