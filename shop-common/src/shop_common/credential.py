"""The credential the gateway mints for each request it forwards, and its check.

A short-lived EdDSA JWT in the X-Gateway-Credential header: issuer "api-gateway",
audience the target service, subject and role of the caller (absent when anonymous),
and the request id. Only the gateway holds the private key, so a request that did
not pass through the gateway cannot carry one, whatever user token it holds.
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
Role = Literal["USER", "ADMIN"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who the gateway says is calling; user_id and role are None for anonymous calls."""

    user_id: str | None
    role: Role | None
    request_id: str | None
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

    def mint(self, *, audience: str, caller: Caller) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": audience,
            "iat": now,
            "exp": now + self._lifetime,
            "rid": caller.request_id,
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

    def verify(self, token: str) -> Caller:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=ISSUER,
                options={"require": ["iss", "aud", "iat", "exp"]},
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            raise InvalidCredential(str(exc)) from exc
        if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS:
            raise InvalidCredential("credential lifetime over 60 seconds")
        user_id = claims.get("sub")
        role = claims.get("role")
        if user_id is not None and role not in ("USER", "ADMIN"):
            raise InvalidCredential("credential has an unknown role")
        return Caller(
            user_id=user_id,
            role=role if user_id is not None else None,
            request_id=claims.get("rid"),
            session_id=claims.get("sid"),
            email_retry_after=_optional_int(claims.get("era")),
        )


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidCredential("credential has a malformed era claim")
    return value
