"""Access tokens (EdDSA JWTs with a kid) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import jwt

from auth_service.signing_keys import KeyRing

ALGORITHM = "EdDSA"


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    account_id: uuid.UUID
    role: str
    session_id: uuid.UUID


class TokenIssuer:
    def __init__(self, keyring: KeyRing, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds

    def access_token(self, claims: AccessTokenClaims, *, now: datetime) -> str:
        key = self.keyring.signing_key()
        issued_at = int(now.timestamp())
        payload = {
            "sub": str(claims.account_id),
            "role": claims.role,
            "sid": str(claims.session_id),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued_at,
            "exp": issued_at + self.ttl_seconds,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(payload, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


def new_refresh_token() -> str:
    """256 random bits; only their hash is stored."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    # The token is random, not a password: a fast hash is enough, and lets the database
    # find a session by an exact, indexed lookup on the hash.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
