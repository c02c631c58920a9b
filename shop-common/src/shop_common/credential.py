"""The credential the gateway mints for each request it forwards, and its check.

A short-lived EdDSA JWT in the X-Gateway-Credential header: issuer "api-gateway",
audience the target service, subject, role and session of the caller (absent when
anonymous). Only the gateway holds the private key, so a request that did not pass
through the gateway cannot carry one, whatever user token it holds.

Both ends cache (docs/decisions/gateway-credential-cache.md): the signer reuses a
caller's credential for half its lifetime, and the verifier remembers the tokens it
has verified until they expire, so an Ed25519 signature is made and checked once per
caller and period, not once per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CREDENTIAL_HEADER = "x-gateway-credential"
ISSUER = "api-gateway"
ALGORITHM = "EdDSA"
MAX_LIFETIME_SECONDS = 60
DEFAULT_LIFETIME_SECONDS = 30
LEEWAY_SECONDS = 5
# Bounds both caches: past it the oldest entry goes (one per distinct caller and period).
CACHE_ENTRIES = 10_000
Role = Literal["USER", "ADMIN"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who the gateway says is calling; user_id and role are None for anonymous calls."""

    user_id: str | None
    role: Role | None
    session_id: str | None = None
    # Set by the gateway when a per-email limit (login, register) is exhausted: the
    # service validates the body first (422 wins over this 429, as the contract orders)
    # and then answers 429 with this Retry-After instead of doing the work.
    email_retry_after: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "ADMIN"


class InvalidCredential(Exception):
    """The request carries no valid gateway credential for this service."""


class CredentialSigner:
    def __init__(
        self, private_key: Ed25519PrivateKey, lifetime: int = DEFAULT_LIFETIME_SECONDS
    ) -> None:
        if not 0 < lifetime <= MAX_LIFETIME_SECONDS:
            raise ValueError("a gateway credential lives at most 60 seconds")
        self._key = private_key
        self._lifetime = lifetime
        # A reused credential still has at least half its lifetime left when it is sent.
        self._reuse_seconds = lifetime / 2
        self._minted: dict[tuple[str, Caller], tuple[float, str]] = {}

    def mint(self, *, audience: str, caller: Caller) -> str:
        """The caller's credential for `audience`: a fresh one, or one minted moments ago.

        Reuse gives nothing away: any credential can be replayed until it expires, so
        what bounds a stolen one is its lifetime, which reuse does not lengthen.
        """
        if caller.email_retry_after is not None:  # a per-request fact: never reused
            return self._sign(audience, caller)
        key = (audience, caller)
        now = time.monotonic()
        minted = self._minted.get(key)
        if minted is not None and minted[0] > now:
            return minted[1]
        token = self._sign(audience, caller)
        if minted is None and len(self._minted) >= CACHE_ENTRIES:
            del self._minted[next(iter(self._minted))]
        self._minted[key] = (now + self._reuse_seconds, token)
        return token

    def _sign(self, audience: str, caller: Caller) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": audience,
            "iat": now,
            "exp": now + self._lifetime,
        }
        if caller.user_id is not None:
            claims["sub"] = caller.user_id
            claims["role"] = caller.role
        if caller.session_id is not None:
            claims["sid"] = caller.session_id
        if caller.email_retry_after is not None:
            claims["era"] = caller.email_retry_after
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)


class CredentialVerifier:
    def __init__(self, public_key: Ed25519PublicKey, audience: str) -> None:
        self._key = public_key
        self._audience = audience
        self._verified: dict[str, tuple[float, Caller]] = {}

    def verify(self, token: str) -> Caller:
        """The caller a valid credential names; InvalidCredential for anything else.

        A token verified before is answered from the cache until its expiry (with the
        same leeway); only valid tokens are cached, so a flood of forged ones costs a
        signature check each and cannot fill it.
        """
        known = self._verified.get(token)
        if known is not None:
            if time.time() <= known[0]:
                return known[1]
            del self._verified[token]
        caller, expires = self._verify_signed(token)
        if len(self._verified) >= CACHE_ENTRIES:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (expires + LEEWAY_SECONDS, caller)
        return caller

    def _verify_signed(self, token: str) -> tuple[Caller, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=ISSUER,
                options={"require": ["iss", "aud", "iat", "exp"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.PyJWTError as exc:
            raise InvalidCredential(str(exc)) from exc
        if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS:
            raise InvalidCredential("credential lifetime over 60 seconds")
        user_id = claims.get("sub")
        role = claims.get("role")
        if user_id is not None and role not in ("USER", "ADMIN"):
            raise InvalidCredential("credential has an unknown role")
        caller = Caller(
            user_id=user_id,
            role=role if user_id is not None else None,
            session_id=claims.get("sid"),
            email_retry_after=_optional_int(claims.get("era")),
        )
        return caller, float(claims["exp"])


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidCredential("credential has a malformed era claim")
    return value
