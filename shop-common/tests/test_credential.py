from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import shop_common.credential as credential
from shop_common.credential import (
    Caller,
    CredentialSigner,
    CredentialVerifier,
    InvalidCredential,
    RequestBinding,
    query_digest,
)

KEY = Ed25519PrivateKey.generate()
ORDER_KEY = Ed25519PrivateKey.generate()
CALLER = Caller(user_id="u-1", role="USER", session_id="s-1")
GET = RequestBinding("GET", "/products/p-1", b"", "rid-1")


def _verifier(audience: str = "product-service") -> CredentialVerifier:
    return CredentialVerifier(
        {"api-gateway": KEY.public_key(), "order-service": ORDER_KEY.public_key()}, audience
    )


def _mint(
    request: RequestBinding = GET, audience: str = "product-service", caller: Caller = CALLER
) -> str:
    return CredentialSigner(KEY).mint(audience=audience, caller=caller, request=request)


def test_a_minted_credential_verifies_for_its_audience_and_request() -> None:
    assert _verifier().verify(_mint(), GET) == CALLER


def test_the_verifier_names_who_minted_the_credential() -> None:
    signer = CredentialSigner(ORDER_KEY, issuer="order-service")
    token = signer.mint(audience="product-service", caller=CALLER, request=GET)
    assert _verifier().verify(token, GET).issuer == "order-service"
    assert _verifier().verify(_mint(), GET).issuer == "api-gateway"


def test_an_anonymous_credential_carries_no_user() -> None:
    anonymous = Caller(user_id=None, role=None)
    caller = _verifier().verify(_mint(caller=anonymous), GET)
    assert caller.user_id is None
    assert caller.role is None
    assert not caller.is_admin


def test_every_credential_is_new_even_for_the_same_caller_and_request() -> None:
    signer = CredentialSigner(KEY)
    tokens = {signer.mint(audience="product-service", caller=CALLER, request=GET) for _ in range(3)}
    assert len(tokens) == 3


def test_a_credential_from_a_get_replayed_on_a_patch_is_refused() -> None:
    token = _mint(GET)
    with pytest.raises(InvalidCredential, match="method"):
        _verifier().verify(token, RequestBinding("PATCH", GET.path, b"", GET.request_id))


@pytest.mark.parametrize(
    ("received", "reason"),
    [
        pytest.param(
            RequestBinding("DELETE", "/products/p-1", b"", "rid-1"), "method", id="method"
        ),
        pytest.param(RequestBinding("GET", "/products/p-2", b"", "rid-1"), "path", id="path"),
        pytest.param(RequestBinding("GET", "/products/p-1/", b"", "rid-1"), "path", id="slash"),
        pytest.param(RequestBinding("GET", "/products/p-1", b"a=1", "rid-1"), "query", id="query"),
        pytest.param(RequestBinding("GET", "/products/p-1", b"", "rid-2"), "request id", id="rid"),
        pytest.param(RequestBinding("GET", "/products/p-1", b"", ""), "request id", id="no-rid"),
    ],
)
def test_a_credential_for_another_request_is_refused(received: RequestBinding, reason: str) -> None:
    with pytest.raises(InvalidCredential, match=reason):
        _verifier().verify(_mint(GET), received)


def test_the_query_is_bound_too() -> None:
    listed = RequestBinding("GET", "/products", b"limit=5&q=lamp", "rid-1")
    token = _mint(listed)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["htq"] == query_digest(b"limit=5&q=lamp")
    assert _verifier().verify(token, listed) == CALLER
    other = RequestBinding("GET", "/products", b"limit=100&q=lamp", "rid-1")
    with pytest.raises(InvalidCredential, match="query"):
        _verifier().verify(_mint(listed), other)


def test_a_credential_is_accepted_once() -> None:
    verifier = _verifier()
    token = _mint()
    verifier.verify(token, GET)
    with pytest.raises(InvalidCredential, match="already used"):
        verifier.verify(token, GET)


def test_a_credential_for_another_service_is_refused() -> None:
    with pytest.raises(InvalidCredential, match="another service"):
        _verifier("product-service").verify(_mint(audience="auth-service"), GET)


def test_a_credential_signed_by_another_key_is_refused() -> None:
    token = CredentialSigner(Ed25519PrivateKey.generate()).mint(
        audience="product-service", caller=CALLER, request=GET
    )
    with pytest.raises(InvalidCredential, match="signature"):
        _verifier().verify(token, GET)


def test_a_minter_signing_in_anothers_name_is_refused() -> None:
    """order-service's key cannot mint what claims to come from the gateway."""
    token = CredentialSigner(ORDER_KEY, issuer="api-gateway").mint(
        audience="product-service", caller=CALLER, request=GET
    )
    with pytest.raises(InvalidCredential, match="signature"):
        _verifier().verify(token, GET)


def _forge(key: Ed25519PrivateKey = KEY, **claims: Any) -> str:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": "api-gateway",
        "aud": "product-service",
        "iat": now,
        "exp": now + 30,
        "jti": f"j-{time.perf_counter_ns()}",
        "rid": GET.request_id,
        "htm": GET.method,
        "htu": GET.path,
        "sub": "u-1",
        "role": "USER",
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, key, algorithm="EdDSA")


def test_a_credential_made_by_pyjwt_verifies() -> None:
    """The hand-built JWS is plain RFC 7515: any JWT library makes the same."""
    assert _verifier().verify(_forge(), GET) == Caller("u-1", "USER")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": int(time.time()) - 60, "iat": int(time.time()) - 90}, id="expired"),
        pytest.param({"exp": int(time.time()) + 3600}, id="lifetime-over-60s"),
        pytest.param({"exp": int(time.time()) + 61, "iat": int(time.time())}, id="61s"),
        pytest.param(
            {"iat": int(time.time()) + 600, "exp": int(time.time()) + 630}, id="issued-in-future"
        ),
        pytest.param({"iss": "someone-else"}, id="unknown-issuer"),
        pytest.param({"role": "ROOT"}, id="unknown-role"),
        pytest.param({"exp": None}, id="no-expiry"),
        pytest.param({"iat": None}, id="no-iat"),
        pytest.param({"jti": None}, id="no-jti"),
        pytest.param({"rid": None}, id="no-rid"),
        pytest.param({"htm": None}, id="no-method"),
        pytest.param({"htu": None}, id="no-path"),
        pytest.param({"aud": ["product-service", "auth-service"]}, id="list-audience"),
        pytest.param({"exp": True}, id="boolean-expiry"),
        pytest.param({"era": -1}, id="negative-era"),
    ],
)
def test_bad_credentials_are_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidCredential):
        _verifier().verify(_forge(**claims), GET)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("a.b", id="two-parts"),
        pytest.param("a.b.c.d", id="four-parts"),
        pytest.param("!!!.###.$$$", id="not-base64"),
        pytest.param("x" * 5000, id="huge"),
        pytest.param(_forge()[:-4] + "AAAA", id="bad-signature"),
        pytest.param(
            jwt.encode({"iss": "api-gateway", "aud": "product-service"}, "s" * 32, "HS256"),
            id="hmac-with-public-key",
        ),
        pytest.param("é.é.é", id="non-ascii"),
    ],
)
def test_malformed_credentials_are_refused(token: str) -> None:
    with pytest.raises(InvalidCredential):
        _verifier().verify(token, GET)


def test_signer_refuses_a_lifetime_over_60_seconds() -> None:
    with pytest.raises(ValueError):
        CredentialSigner(KEY, lifetime=61)


def test_an_exhausted_email_limit_travels_in_the_credential() -> None:
    limited = Caller(user_id=None, role=None, email_retry_after=42)
    assert _verifier().verify(_mint(caller=limited), GET).email_retry_after == 42


def test_the_replay_cache_forgets_expired_credentials_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(credential, "REPLAY_CACHE_ENTRIES", 3)
    verifier = _verifier()
    for _ in range(10):
        verifier.verify(_mint(), GET)
    assert len(verifier._seen) <= 3
    offset = 0.0
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + offset)
    offset = 36.0  # past every exp and the leeway: the next check forgets them all
    verifier.verify(_forge(iat=int(real_time() + offset), exp=int(real_time() + offset) + 30), GET)
    assert len(verifier._seen) == 1


def test_a_forged_copy_cannot_use_up_a_real_credentials_jti() -> None:
    verifier = _verifier()
    real = _mint()
    jti = jwt.decode(real, options={"verify_signature": False})["jti"]
    forged = _forge(Ed25519PrivateKey.generate(), jti=jti)
    with pytest.raises(InvalidCredential, match="signature"):
        verifier.verify(forged, GET)
    assert verifier.verify(real, GET) == CALLER


def test_the_deadline_travels_in_the_credential_to_the_millisecond() -> None:
    deadline = time.time() + 9.0
    token = CredentialSigner(KEY).mint(
        audience="product-service", caller=CALLER, request=GET, deadline=deadline
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["dl"] == int(deadline * 1000)
    caller = _verifier().verify(token, GET)
    assert caller.deadline is not None
    assert deadline - 0.001 < caller.deadline <= deadline


def test_a_credential_without_a_deadline_names_none() -> None:
    assert _verifier().verify(_mint(), GET).deadline is None


def test_a_valid_credential_past_its_deadline_is_refused_and_names_its_caller() -> None:
    token = CredentialSigner(KEY).mint(
        audience="product-service", caller=CALLER, request=GET, deadline=time.time() - 0.01
    )
    with pytest.raises(credential.CredentialPastDeadline) as refused:
        _verifier().verify(token, GET)
    assert refused.value.caller.user_id == CALLER.user_id


def test_a_forged_credential_past_its_deadline_is_refused_as_invalid_not_late() -> None:
    token = CredentialSigner(Ed25519PrivateKey.generate()).mint(
        audience="product-service", caller=CALLER, request=GET, deadline=time.time() - 1
    )
    with pytest.raises(InvalidCredential, match="signature") as refused:
        _verifier().verify(token, GET)
    assert not isinstance(refused.value, credential.CredentialPastDeadline)


@pytest.mark.parametrize(
    "deadline",
    [
        pytest.param("soon", id="text"),
        pytest.param(True, id="boolean"),
        pytest.param(0, id="zero"),
        pytest.param(-5, id="negative"),
        pytest.param(1.5e12, id="float"),
    ],
)
def test_a_malformed_deadline_claim_is_refused(deadline: object) -> None:
    with pytest.raises(InvalidCredential, match="dl"):
        _verifier().verify(_forge(dl=deadline), GET)


@pytest.mark.parametrize(
    ("timeout", "before_giving_up"),
    [
        pytest.param(10.0, 1.0, id="the-margin"),
        pytest.param(2.0, 0.5, id="a-quarter-of-a-short-timeout"),
    ],
)
def test_the_deadline_lies_a_margin_before_the_minter_gives_up(
    timeout: float, before_giving_up: float
) -> None:
    assert credential.deadline_after(timeout, now=1000.0) == 1000.0 + timeout - before_giving_up
