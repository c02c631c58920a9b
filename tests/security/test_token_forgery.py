"""Forged, altered and misaddressed access tokens (API2; RFC 8725's pitfalls).

Each forgery starts from a real token of a real user, so the only fault a token has is
the one under test; the control re-signs the same claims with the real key and passes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.security.forgery import (
    b64url,
    b64url_decode,
    parts,
    real_signing_key,
    sign_eddsa,
    sign_hs256,
    with_signature,
)
from tests.security.support import (
    Shop,
    Tokens,
    admin_tokens,
    assert_unauthorized,
    bearer,
    create_product,
    new_user,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def victim(shop: Shop) -> Tokens:
    with shop.client() as client:
        return new_user(client)[1]


def refused_everywhere(gateway: httpx.Client, token: str) -> None:
    """401 where a token is needed, where ADMIN is needed, and on a public read too."""
    product = create_product(gateway, admin_tokens(gateway))
    assert_unauthorized(gateway.get("/auth/me", headers=bearer(token)))
    assert_unauthorized(gateway.get("/auth/users", headers=bearer(token)))
    assert_unauthorized(gateway.delete(f"/products/{product['id']}", headers=bearer(token)))
    assert_unauthorized(gateway.get("/products", headers=bearer(token)))
    assert gateway.get(f"/products/{product['id']}").status_code == 200


def real_key_of(shop: Shop, token: str) -> tuple[dict[str, Any], dict[str, Any], Any]:
    header, claims, _ = parts(token)
    return header, claims, real_signing_key(shop.data_dir, header["kid"])


def test_control_the_same_claims_re_signed_with_the_real_key_are_accepted(
    shop: Shop, gateway: httpx.Client, victim: Tokens
) -> None:
    header, claims, key = real_key_of(shop, victim.access_token)
    token = sign_eddsa(header, {**claims, "jti": str(uuid.uuid4())}, key)
    assert gateway.get("/auth/me", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["empty", "original"])
def test_alg_none_token_is_refused(
    gateway: httpx.Client, victim: Tokens, alg: str, signature: str
) -> None:
    header, claims, original = parts(victim.access_token)
    forged = with_signature(
        {**header, "alg": alg},
        {**claims, "role": "ADMIN"},
        "" if signature == "empty" else original,
    )
    refused_everywhere(gateway, forged)


def _public_key_forms(jwk: dict[str, str]) -> dict[str, bytes]:
    raw = b64url_decode(jwk["x"])
    public = Ed25519PublicKey.from_public_bytes(raw)
    pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return {
        "raw-bytes": raw,
        "jwk-x-text": jwk["x"].encode(),
        "pem": pem,
        "pem-without-newline": pem.rstrip(b"\n"),
        "der": public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
    }


@pytest.mark.parametrize("form", ["raw-bytes", "jwk-x-text", "pem", "pem-without-newline", "der"])
def test_hs256_signed_with_the_public_key_is_refused(
    gateway: httpx.Client, victim: Tokens, form: str
) -> None:
    header, claims, _ = parts(victim.access_token)
    jwks = gateway.get("/auth/jwks.json").json()["keys"]
    jwk = next(key for key in jwks if key["kid"] == header["kid"])
    secret = _public_key_forms(jwk)[form]
    forged = sign_hs256({**header, "alg": "HS256"}, {**claims, "role": "ADMIN"}, secret)
    refused_everywhere(gateway, forged)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"role": "ADMIN"}, id="role-USER-to-ADMIN"),
        pytest.param({"sub": str(uuid.uuid4())}, id="another-sub"),
        pytest.param({"exp": int(time.time()) + 86400 * 365}, id="longer-exp"),
        pytest.param({"sid": str(uuid.uuid4())}, id="another-sid"),
    ],
)
def test_tampered_claims_with_the_original_signature_are_refused(
    gateway: httpx.Client, victim: Tokens, change: dict[str, Any]
) -> None:
    header, claims, signature = parts(victim.access_token)
    refused_everywhere(gateway, with_signature(header, {**claims, **change}, signature))


@pytest.mark.parametrize(
    "issuer",
    [
        pytest.param("https://evil.example", id="another-issuer"),
        pytest.param("shop-auth ", id="trailing-space"),
        pytest.param("SHOP-AUTH", id="other-case"),
        pytest.param(None, id="no-iss"),
    ],
)
def test_wrong_issuer_signed_with_the_real_key_is_refused(
    shop: Shop, gateway: httpx.Client, victim: Tokens, issuer: str | None
) -> None:
    header, claims, key = real_key_of(shop, victim.access_token)
    claims = {**claims, "iss": issuer}
    if issuer is None:
        del claims["iss"]
    refused_everywhere(gateway, sign_eddsa(header, claims, key))


@pytest.mark.parametrize(
    "audience",
    [
        pytest.param("another-api", id="another-audience"),
        pytest.param("product-service", id="an-internal-service"),
        pytest.param(["another-api"], id="list-without-ours"),
        pytest.param(None, id="no-aud"),
    ],
)
def test_wrong_audience_signed_with_the_real_key_is_refused(
    shop: Shop, gateway: httpx.Client, victim: Tokens, audience: str | list[str] | None
) -> None:
    header, claims, key = real_key_of(shop, victim.access_token)
    claims = {**claims, "aud": audience}
    if audience is None:
        del claims["aud"]
    refused_everywhere(gateway, sign_eddsa(header, claims, key))


@pytest.mark.parametrize(
    "kid",
    [
        pytest.param("attacker-key-1", id="unknown-kid"),
        pytest.param(None, id="no-kid"),
        pytest.param("../../../../../../dev/null", id="path-traversal-kid"),
        pytest.param("' OR '1'='1", id="sql-kid"),
        pytest.param("real", id="real-kid-wrong-key"),
    ],
)
def test_unknown_kid_signed_with_a_key_of_our_own_is_refused(
    gateway: httpx.Client, victim: Tokens, kid: str | None
) -> None:
    header, claims, _ = parts(victim.access_token)
    forged_header = {"alg": "EdDSA", "typ": "JWT"}
    if kid == "real":
        forged_header["kid"] = header["kid"]
    elif kid is not None:
        forged_header["kid"] = kid
    forged = sign_eddsa(forged_header, {**claims, "role": "ADMIN"}, Ed25519PrivateKey.generate())
    refused_everywhere(gateway, forged)


def test_embedded_jwk_and_jku_headers_are_not_trusted(
    gateway: httpx.Client, victim: Tokens
) -> None:
    header, claims, _ = parts(victim.access_token)
    attacker = Ed25519PrivateKey.generate()
    raw = attacker.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": "attacker"}
    forged_header = {
        "alg": "EdDSA",
        "kid": "attacker",
        "jwk": jwk,
        "jku": "https://evil.example/jwks.json",
    }
    refused_everywhere(gateway, sign_eddsa(forged_header, {**claims, "role": "ADMIN"}, attacker))


@pytest.mark.parametrize(
    "times",
    [
        pytest.param({"iat": -960, "exp": -60}, id="expired-a-minute-ago"),
        pytest.param({"iat": -901, "exp": -1}, id="expired-a-second-ago"),
        pytest.param({"iat": 3600, "exp": 4500}, id="issued-in-the-future"),
        pytest.param({"iat": -10, "exp": None}, id="no-exp"),
    ],
)
def test_expired_token_signed_with_the_real_key_is_refused(
    shop: Shop, gateway: httpx.Client, victim: Tokens, times: dict[str, int | None]
) -> None:
    header, claims, key = real_key_of(shop, victim.access_token)
    now = int(time.time())
    claims = {**claims, "jti": str(uuid.uuid4())}
    for name, offset in times.items():
        if offset is None:
            del claims[name]
        else:
            claims[name] = now + offset
    refused_everywhere(gateway, sign_eddsa(header, claims, key))


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer", id="no-token"),
        pytest.param("Bearer not.a.jwt", id="garbage"),
        pytest.param("Bearer " + "a" * 10000, id="huge"),
        pytest.param("Basic YWRtaW46YWRtaW4=", id="basic"),
        pytest.param("Bearer a.b", id="two-segments"),
    ],
)
def test_malformed_authorization_is_refused(gateway: httpx.Client, authorization: str) -> None:
    response = gateway.get("/auth/me", headers={"Authorization": authorization})
    assert_unauthorized(response)


def test_jwks_publishes_public_keys_only(gateway: httpx.Client) -> None:
    keys = gateway.get("/auth/jwks.json").json()["keys"]
    assert keys
    for key in keys:
        assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}, key
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == (
            "OKP",
            "Ed25519",
            "EdDSA",
            "sig",
        )
