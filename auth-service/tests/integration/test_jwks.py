import asyncio
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest

from auth_service.signing_keys import rotate_keys

pytestmark = pytest.mark.anyio


def kid_of(tokens: dict[str, Any]) -> str:
    kid: str = jwt.get_unverified_header(tokens["access_token"])["kid"]
    return kid


async def jwks(api: Any) -> dict[str, Any]:
    response: httpx.Response = await api.client.get("/auth/jwks.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def verify(tokens: dict[str, Any], jwks_document: dict[str, Any]) -> dict[str, Any]:
    key = next(k for k in jwks_document["keys"] if k["kid"] == kid_of(tokens))
    return jwt.decode(
        tokens["access_token"], jwt.PyJWK(key).key, algorithms=["EdDSA"], audience="shop-api"
    )


async def test_jwks_publishes_public_ed25519_keys_only(api):
    document = await jwks(api)
    assert len(document["keys"]) == 1
    key = document["keys"][0]
    assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")


async def test_the_first_start_creates_one_key_file(api):
    files = sorted(p.name for p in api.settings.keys_dir.glob("*.pem"))
    assert files == [f"{(await jwks(api))['keys'][0]['kid']}.pem"]


async def test_after_rotation_new_tokens_use_the_new_key_and_old_ones_still_verify(api):
    user, old_tokens = await api.new_user()
    rotate_keys(api.settings.keys_dir, retain=timedelta(minutes=20))
    api.app.state.keyring.reload()
    new_tokens = await api.login(user["email"])
    assert kid_of(new_tokens) != kid_of(old_tokens)
    document = await jwks(api)
    assert {kid_of(old_tokens), kid_of(new_tokens)} <= {k["kid"] for k in document["keys"]}
    assert verify(old_tokens, document)["sub"] == verify(new_tokens, document)["sub"]


async def test_a_running_service_picks_up_a_rotated_key_by_itself(start_api):
    async with start_api(signing_key_reload_seconds=0.05) as api:
        user, old_tokens = await api.new_user()
        rotate_keys(api.settings.keys_dir, retain=timedelta(minutes=20))
        for _ in range(100):
            await asyncio.sleep(0.05)
            new_tokens = await api.login(user["email"])
            if kid_of(new_tokens) != kid_of(old_tokens):
                break
        assert kid_of(new_tokens) != kid_of(old_tokens)


async def test_a_new_key_waits_for_its_activation_delay_before_signing(start_api):
    async with start_api(signing_key_activation_seconds=30) as api:
        user, old_tokens = await api.new_user()
        rotate_keys(api.settings.keys_dir, retain=timedelta(minutes=20))
        api.app.state.keyring.reload()
        # Published at once, so every replica lists it before any replica signs with it.
        assert len((await jwks(api))["keys"]) == 2
        assert kid_of(await api.login(user["email"])) == kid_of(old_tokens)


async def test_every_replica_sharing_the_key_directory_signs_with_the_same_key(api, start_api):
    async with start_api() as replica:
        user, tokens = await api.new_user()
        other = await replica.login(user["email"])
        assert kid_of(tokens) == kid_of(other)
        assert await jwks(api) == await jwks(replica)
