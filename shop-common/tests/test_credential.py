from __future__ import annotations

import contextlib
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import shop_common.credential as credential
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


class _Clock:
    """time.time and time.monotonic of the credential module, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        real_time, real_monotonic = time.time, time.monotonic
        monkeypatch.setattr(time, "time", lambda: real_time() + self.offset)
        monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + self.offset)


def _count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls = [0]
    original = getattr(jwt, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(jwt, name, counted)
    return calls


def test_a_callers_credential_is_reused_for_half_its_lifetime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock(monkeypatch)
    signs = _count_calls(monkeypatch, "encode")
    signer = CredentialSigner(KEY, lifetime=30)
    first = signer.mint(audience="product-service", caller=CALLER)
    clock.offset = 14
    assert signer.mint(audience="product-service", caller=CALLER) == first
    assert signs[0] == 1
    clock.offset = 16
    renewed = signer.mint(audience="product-service", caller=CALLER)
    assert renewed != first and signs[0] == 2
    claims = jwt.decode(renewed, options={"verify_signature": False})
    assert claims["exp"] - time.time() > 29  # renewed, not extended


@pytest.mark.parametrize(
    ("audience", "caller"),
    [
        pytest.param("auth-service", CALLER, id="other-audience"),
        pytest.param("product-service", Caller("u-2", "USER", "s-1"), id="other-user"),
        pytest.param("product-service", Caller("u-1", "ADMIN", "s-1"), id="other-role"),
        pytest.param("product-service", Caller("u-1", "USER", "s-2"), id="other-session"),
        pytest.param("product-service", Caller(None, None), id="anonymous"),
    ],
)
def test_each_caller_and_audience_gets_its_own_credential(audience: str, caller: Caller) -> None:
    signer = CredentialSigner(KEY)
    mine = signer.mint(audience="product-service", caller=CALLER)
    theirs = signer.mint(audience=audience, caller=caller)
    assert theirs != mine
    assert CredentialVerifier(KEY.public_key(), audience).verify(theirs) == caller


def test_a_credential_with_an_email_limit_is_never_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    signs = _count_calls(monkeypatch, "encode")
    signer = CredentialSigner(KEY)
    limited = Caller(user_id=None, role=None, email_retry_after=42)
    signer.mint(audience="auth-service", caller=limited)
    signer.mint(audience="auth-service", caller=limited)
    assert signs[0] == 2


def test_a_verified_credential_is_checked_once_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock(monkeypatch)
    token = CredentialSigner(KEY, lifetime=30).mint(audience="product-service", caller=CALLER)
    checks = _count_calls(monkeypatch, "decode")
    verifier = CredentialVerifier(KEY.public_key(), "product-service")
    assert verifier.verify(token) == CALLER
    clock.offset = 34  # past exp, within the 5 s leeway
    assert verifier.verify(token) == CALLER
    assert checks[0] == 1
    clock.offset = 36  # past the leeway: checked again (PyJWT's own clock decides)
    with contextlib.suppress(InvalidCredential):
        verifier.verify(token)
    assert checks[0] == 2


def test_a_refused_credential_is_never_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    checks = _count_calls(monkeypatch, "decode")
    verifier = CredentialVerifier(KEY.public_key(), "auth-service")
    forged = _forge(role="ROOT")
    for _ in range(2):
        with pytest.raises(InvalidCredential):
            verifier.verify(forged)
    assert checks[0] == 2


def test_the_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credential, "CACHE_ENTRIES", 3)
    signer = CredentialSigner(KEY)
    verifier = CredentialVerifier(KEY.public_key(), "product-service")
    for n in range(10):
        token = signer.mint(audience="product-service", caller=Caller(f"u-{n}", "USER"))
        verifier.verify(token)
    assert len(signer._minted) <= 3
    assert len(verifier._verified) <= 3
