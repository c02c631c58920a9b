from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from api_gateway.exceptions import InvalidToken, KeysUnavailable
from api_gateway.jwks import JwksCache, TokenVerifier, parse_jwks

pytestmark = pytest.mark.anyio


class Kit(NamedTuple):
    tokens: Any
    new_key: Callable[[], Any]


class KeyServer:
    """A fetch function serving a JWKS document, counting fetches."""

    def __init__(self, *keys: Any) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.fail = False

    async def __call__(self) -> bytes:
        self.fetches += 1
        if self.fail:
            raise ConnectionError("auth-service down")
        return orjson.dumps({"keys": [key.jwk() for key in self.keys]})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verifier_for(server: KeyServer, **options: Any) -> TokenVerifier:
    cache = JwksCache(
        server,
        refetch_interval=options.pop("refetch_interval", 60.0),
        max_age=options.pop("max_age", 300.0),
    )
    return TokenVerifier(cache, issuer="shop-auth", audience="shop-api", **options)


async def test_a_valid_token_gives_its_identity(tokens, signing_key) -> None:
    token = tokens.token(sub="user-1", role="ADMIN", sid="session-1", jti="token-1")
    identity = await verifier_for(KeyServer(signing_key)).verify(token)
    assert (identity.user_id, identity.role, identity.session_id, identity.token_id) == (
        "user-1",
        "ADMIN",
        "session-1",
        "token-1",
    )
    assert identity.is_admin


def forge_with_other_key(kit: Kit) -> str:
    tokens, new_key = kit.tokens, kit.new_key
    impostor = new_key()
    impostor.kid = tokens.key.kid  # the right kid, the wrong key
    return str(tokens.token(key=impostor))


def tamper_role(kit: Kit) -> str:
    tokens = kit.tokens
    header, _payload, signature = tokens.token().split(".")
    payload = b64(json.dumps(tokens.claims(role="ADMIN")).encode())
    return f"{header}.{payload}.{signature}"


def alg_none(kit: Kit) -> str:
    tokens = kit.tokens
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": tokens.key.kid}).encode())
    return f"{header}.{b64(json.dumps(tokens.claims(role='ADMIN')).encode())}."


def hs256_with_public_key(kit: Kit) -> str:
    tokens = kit.tokens
    public = tokens.key.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    header = {"alg": "HS256", "typ": "JWT", "kid": tokens.key.kid}
    signing_input = (
        f"{b64(json.dumps(header).encode())}.{b64(json.dumps(tokens.claims()).encode())}"
    )
    import hmac
    from hashlib import sha256

    mac = hmac.new(public, signing_input.encode(), sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def rs256_token(kit: Kit) -> str:
    tokens = kit.tokens
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(tokens.claims(), rsa, algorithm="RS256", headers={"kid": tokens.key.kid})


BAD_TOKENS = [
    pytest.param(forge_with_other_key, id="forged-signature"),
    pytest.param(tamper_role, id="tampered-claims"),
    pytest.param(alg_none, id="alg-none"),
    pytest.param(hs256_with_public_key, id="hs256-with-the-public-key"),
    pytest.param(rs256_token, id="algorithm-not-allowed"),
    pytest.param(lambda kit: kit.tokens.token(exp=int(time.time()) - 1), id="expired"),
    pytest.param(lambda kit: kit.tokens.token(aud="other-api"), id="wrong-audience"),
    pytest.param(lambda kit: kit.tokens.token(iss="someone-else"), id="wrong-issuer"),
    pytest.param(lambda kit: kit.tokens.token(key=kit.new_key()), id="unknown-kid"),
    pytest.param(lambda kit: kit.tokens.token(sid=None), id="no-sid"),
    pytest.param(lambda kit: kit.tokens.token(jti=None), id="no-jti"),
    pytest.param(lambda kit: kit.tokens.token(sub=None), id="no-sub"),
    pytest.param(lambda kit: kit.tokens.token(exp=None), id="no-exp"),
    pytest.param(lambda kit: kit.tokens.token(role="SUPERUSER"), id="unknown-role"),
    pytest.param(lambda kit: kit.tokens.token(role=None), id="no-role"),
    pytest.param(lambda kit: kit.tokens.token(sub=42), id="numeric-sub"),
    pytest.param(lambda kit: kit.tokens.token(nbf=int(time.time()) + 600), id="not-yet-valid"),
    pytest.param(
        lambda kit: kit.tokens.token(iat=int(time.time()) + 3600), id="issued-in-the-future"
    ),
    pytest.param(lambda _kit: "not-a-jwt", id="garbage"),
    pytest.param(lambda _kit: "a.b.c", id="garbage-segments"),
    pytest.param(lambda kit: kit.tokens.token() + "x" * 5000, id="overlong"),
]


@pytest.mark.parametrize("make_token", BAD_TOKENS)
async def test_unacceptable_tokens_are_refused(tokens, signing_key, new_key, make_token) -> None:
    verifier = verifier_for(KeyServer(signing_key))
    with pytest.raises(InvalidToken):
        await verifier.verify(make_token(Kit(tokens, new_key)))


async def test_a_token_without_a_kid_is_refused(tokens, signing_key) -> None:
    token = jwt.encode(tokens.claims(), signing_key.private_key, algorithm="EdDSA")
    with pytest.raises(InvalidToken):
        await verifier_for(KeyServer(signing_key)).verify(token)


async def test_each_token_signature_is_checked_once(tokens, signing_key, monkeypatch) -> None:
    decodes = 0
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        nonlocal decodes
        decodes += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr("api_gateway.jwks.jwt.decode", counting_decode)
    verifier = verifier_for(KeyServer(signing_key))
    token = tokens.token()
    for _ in range(5):
        await verifier.verify(token)
    await verifier.verify(tokens.token())
    assert decodes == 2


async def test_a_cached_token_still_expires(tokens, signing_key, monkeypatch) -> None:
    verifier = verifier_for(KeyServer(signing_key))
    token = tokens.token(exp=int(time.time()) + 30)
    await verifier.verify(token)
    later = time.time() + 31
    monkeypatch.setattr("api_gateway.jwks.wall_time", lambda: later)
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_the_cache_of_verified_tokens_is_bounded(tokens, signing_key) -> None:
    verifier = verifier_for(KeyServer(signing_key), cache_size=10)
    for _ in range(25):
        await verifier.verify(tokens.token())
    assert len(verifier._verified) <= 10


async def test_an_unknown_kid_refetches_the_keys_at_most_once_per_interval(
    tokens, signing_key, new_key, monkeypatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("api_gateway.jwks.monotonic", lambda: clock[0])
    server = KeyServer(signing_key)
    verifier = verifier_for(server, refetch_interval=5.0)
    await verifier.verify(tokens.token())
    assert server.fetches == 1
    stranger = new_key()
    for _ in range(5):
        with pytest.raises(InvalidToken):
            await verifier.verify(tokens.token(key=stranger))
    assert server.fetches == 1  # the keys were fetched under 5 s ago
    clock[0] += 6
    for _ in range(5):
        with pytest.raises(InvalidToken):
            await verifier.verify(tokens.token(key=stranger))
    assert server.fetches == 2  # one refetch for the unknown kid, then rate-limited again


async def test_a_rotated_key_is_found_by_refetching(tokens, signing_key, new_key) -> None:
    server = KeyServer(signing_key)
    verifier = verifier_for(server, refetch_interval=0.0)
    await verifier.verify(tokens.token())
    rotated = new_key()
    server.keys.append(rotated)
    identity = await verifier.verify(tokens.token(key=rotated, sub="after-rotation"))
    assert identity.user_id == "after-rotation"
    assert server.fetches == 2


async def test_concurrent_misses_share_one_fetch(tokens, signing_key) -> None:
    server = KeyServer(signing_key)
    verifier = verifier_for(server)
    await asyncio.gather(*(verifier.verify(tokens.token()) for _ in range(20)))
    assert server.fetches == 1


async def test_keys_that_never_loaded_give_503_not_401(tokens, signing_key) -> None:
    server = KeyServer(signing_key)
    server.fail = True
    verifier = verifier_for(server)
    with pytest.raises(KeysUnavailable):
        await verifier.verify(tokens.token())


async def test_known_keys_survive_a_failed_refresh(tokens, signing_key, new_key) -> None:
    server = KeyServer(signing_key)
    verifier = verifier_for(server, refetch_interval=0.0)
    await verifier.verify(tokens.token())
    server.fail = True
    with pytest.raises(InvalidToken):
        await verifier.verify(tokens.token(key=new_key()))
    assert (await verifier.verify(tokens.token(sub="still-fine"))).user_id == "still-fine"


async def test_the_keys_are_refetched_periodically_and_a_retired_key_drops_out(
    tokens, signing_key, new_key
) -> None:
    retiring = new_key()
    server = KeyServer(signing_key, retiring)
    cache = JwksCache(server, refetch_interval=60.0, max_age=0.02)
    verifier = TokenVerifier(cache, issuer="shop-auth", audience="shop-api")
    old_token = tokens.token(key=retiring)
    await verifier.verify(old_token)  # verified, and now cached
    server.keys.remove(retiring)
    refresher = asyncio.create_task(cache.keep_fresh())
    try:
        while server.fetches < 3:
            await asyncio.sleep(0.01)
    finally:
        refresher.cancel()
    with pytest.raises(InvalidToken):
        await verifier.verify(old_token)  # not answered from the cache any more
    assert (await verifier.verify(tokens.token(sub="current"))).user_id == "current"


async def test_the_refresher_retries_every_second_until_the_keys_first_load(
    tokens, signing_key, monkeypatch
) -> None:
    monkeypatch.setattr("api_gateway.jwks.NEVER_LOADED_RETRY_SECONDS", 0.01)
    server = KeyServer(signing_key)
    server.fail = True
    cache = JwksCache(server, refetch_interval=60.0, max_age=60.0)
    refresher = asyncio.create_task(cache.keep_fresh())
    try:
        while server.fetches < 3:
            await asyncio.sleep(0.01)
        server.fail = False
        while server.fetches < 4:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    finally:
        refresher.cancel()
    assert server.fetches == 4  # loaded: the next refresh is a minute away
    verifier = TokenVerifier(cache, issuer="shop-auth", audience="shop-api")
    assert (await verifier.verify(tokens.token(sub="loaded"))).user_id == "loaded"


async def test_a_revoked_session_is_refused_even_when_its_token_is_cached(
    tokens, signing_key
) -> None:
    revoked: set[str] = set()
    cache = JwksCache(KeyServer(signing_key), refetch_interval=60.0, max_age=60.0)
    verifier = TokenVerifier(cache, issuer="shop-auth", audience="shop-api", revoked=revoked)
    token = tokens.token(sid="session-to-end")
    assert (await verifier.verify(token)).session_id == "session-to-end"
    other = tokens.token(sid="session-that-lives")
    await verifier.verify(other)
    revoked.add("session-to-end")
    with pytest.raises(InvalidToken) as refused:
        await verifier.verify(token)
    assert refused.value.reason == "revoked session"
    with pytest.raises(InvalidToken):
        await verifier.verify(tokens.token(sid="session-to-end"))  # a fresh token too
    assert (await verifier.verify(other)).session_id == "session-that-lives"


def test_the_jwks_parser_keeps_only_ed25519_signing_keys(signing_key) -> None:
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    document = {
        "keys": [
            signing_key.jwk(),
            {"kty": "RSA", "kid": "rsa", "n": "x", "e": "AQAB"},
            {"kty": "OKP", "crv": "X25519", "kid": "x25519", "x": b64(other)},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "x": b64(other), "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": "AAAA"},
            {"kty": "OKP", "crv": "Ed25519", "x": b64(other)},
            "not a key",
        ]
    }
    assert list(parse_jwks(orjson.dumps(document))) == [signing_key.kid]
    assert parse_jwks(b'["not", "a", "jwks"]') == {}
