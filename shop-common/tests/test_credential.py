from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_common.credential import (
    Caller,
    CredentialSigner,
    CredentialVerifier,
    InvalidCredential,
)

KEY = Ed25519PrivateKey.generate()
CALLER = Caller(user_id="u-1", role="USER", session_id="s-1")


def test_a_minted_credential_verifies_for_its_audience() -> None:
    token = CredentialSigner(KEY).mint(audience="product-service", caller=CALLER)
    assert CredentialVerifier(KEY.public_key(), "product-service").verify(token) == CALLER


def test_an_anonymous_credential_carries_no_user() -> None:
    anonymous = Caller(user_id=None, role=None)
    token = CredentialSigner(KEY).mint(audience="auth-service", caller=anonymous)
    caller = CredentialVerifier(KEY.public_key(), "auth-service").verify(token)
    assert caller.user_id is None
    assert caller.role is None
    assert not caller.is_admin


def test_a_credential_for_another_service_is_refused() -> None:
    token = CredentialSigner(KEY).mint(audience="auth-service", caller=CALLER)
    with pytest.raises(InvalidCredential):
        CredentialVerifier(KEY.public_key(), "product-service").verify(token)


def test_a_credential_signed_by_another_key_is_refused() -> None:
    token = CredentialSigner(Ed25519PrivateKey.generate()).mint(
        audience="auth-service", caller=CALLER
    )
    with pytest.raises(InvalidCredential):
        CredentialVerifier(KEY.public_key(), "auth-service").verify(token)


def _forge(**claims: object) -> str:
    now = int(time.time())
    base: dict[str, object] = {
        "iss": "api-gateway",
        "aud": "auth-service",
        "iat": now,
        "exp": now + 30,
        "sub": "u-1",
        "role": "USER",
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, KEY, algorithm="EdDSA")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": int(time.time()) - 60, "iat": int(time.time()) - 90}, id="expired"),
        pytest.param({"exp": int(time.time()) + 3600}, id="lifetime-over-60s"),
        pytest.param({"iss": "someone-else"}, id="wrong-issuer"),
        pytest.param({"role": "ROOT"}, id="unknown-role"),
        pytest.param({"exp": None}, id="no-expiry"),
    ],
)
def test_bad_credentials_are_refused(claims: dict[str, object]) -> None:
    with pytest.raises(InvalidCredential):
        CredentialVerifier(KEY.public_key(), "auth-service").verify(_forge(**claims))


def test_signer_refuses_a_lifetime_over_60_seconds() -> None:
    with pytest.raises(ValueError):
        CredentialSigner(KEY, lifetime=61)


def test_an_hmac_credential_using_the_public_key_is_refused() -> None:
    token = jwt.encode({"iss": "api-gateway", "aud": "auth-service"}, "s" * 32, algorithm="HS256")
    with pytest.raises(InvalidCredential):
        CredentialVerifier(KEY.public_key(), "auth-service").verify(token)


def test_an_exhausted_email_limit_travels_in_the_credential() -> None:
    limited = Caller(user_id=None, role=None, email_retry_after=42)
    token = CredentialSigner(KEY).mint(audience="auth-service", caller=limited)
    assert (
        CredentialVerifier(KEY.public_key(), "auth-service").verify(token).email_retry_after == 42
    )
