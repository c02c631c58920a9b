"""Access-token checks against the auth-service's JWKS, with a cache of verified tokens.

Only EdDSA is accepted (an allow-list, so `none` and HMAC-with-the-public-key fail
before any key is used). The key set is fetched from auth-service, refetched when a
token names an unknown kid (at most once per `refetch_interval`), and refreshed in the
background every `max_age` so retired keys drop out. A verified token is remembered
until its exp, so each token's signature is checked once, not on every request; its
session is checked against the revoked ones on every request, cached or not.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass
from time import monotonic
from time import time as wall_time
from typing import Any, Literal

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api_gateway.exceptions import InvalidToken, KeysUnavailable
from api_gateway.metrics import token_checked

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ("sub", "role", "sid", "jti", "iss", "aud", "iat", "exp")
ROLES = frozenset({"USER", "ADMIN"})
MAX_TOKEN_LENGTH = 4096
# iat may run slightly ahead of our clock on another host; further ahead is refused.
CLOCK_SKEW_SECONDS = 60
NEVER_LOADED_RETRY_SECONDS = 1.0
logger = logging.getLogger(__name__)
Role = Literal["USER", "ADMIN"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified access token speaks for."""

    user_id: str
    role: Role
    session_id: str
    token_id: str
    expires_at: float
    key_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == "ADMIN"


def parse_jwks(raw: bytes) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 signing keys of a JWKS document, by kid; other keys are skipped."""
    document = orjson.loads(raw)
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in document.get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
            continue
        try:
            x = base64.urlsafe_b64decode(str(jwk["x"]) + "==")
            keys[jwk["kid"]] = Ed25519PublicKey.from_public_bytes(x)
        except (KeyError, ValueError, binascii.Error):
            logger.warning("skipping a malformed key in the JWKS", extra={"kid": jwk["kid"]})
    return keys


class JwksCache:
    """The auth-service's public keys by kid, fetched lazily and refetched sparingly."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[bytes]],
        *,
        refetch_interval: float,
        max_age: float,
    ) -> None:
        self._fetch = fetch
        # Called with the kids that left the set (a retired or withdrawn key).
        self.on_retired: Callable[[set[str]], None] | None = None
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._failing = False
        self.fetches = 0

    async def key(self, kid: str) -> Ed25519PublicKey:
        """The key for kid; InvalidToken when unknown, KeysUnavailable when never fetched."""
        now = monotonic()
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self._inflight is not None or self._may_refetch(now):
            await self.refresh()
            key = self._keys.get(kid)
        if key is not None:
            return key
        if self._fetched_at is None:
            raise KeysUnavailable()
        raise InvalidToken(f"unknown key id {kid!r}")

    @property
    def loaded(self) -> bool:
        """Whether a key set was ever fetched (until then no token can be checked)."""
        return self._fetched_at is not None

    def _may_refetch(self, now: float) -> bool:
        # Never loaded: no token can pass, so every miss tries (concurrent misses share
        # one fetch); once loaded, an unknown kid refetches at most once per interval.
        if self._attempted_at is None or self._fetched_at is None:
            return True
        return now - self._attempted_at >= self._refetch_interval

    async def refresh(self) -> None:
        """Fetch the key set now, sharing one fetch between concurrent callers."""
        await asyncio.shield(self._start_refresh())

    def _start_refresh(self) -> asyncio.Task[None]:
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._refresh(), name="jwks-refresh")
        return self._inflight

    async def _refresh(self) -> None:
        self._attempted_at = monotonic()
        self.fetches += 1
        try:
            keys = parse_jwks(await self._fetch())
        except Exception as exc:  # the old keys stay; the next miss may try again
            if not self._failing:  # once per outage: the refresher retries every second
                logger.warning("fetching the JWKS failed", extra={"error": repr(exc)})
            self._failing = True
        else:
            if self._failing:
                logger.info("the JWKS answers again")
            self._failing = False
            retired = set(self._keys) - set(keys)
            if keys.keys() != self._keys.keys():
                logger.info("JWKS loaded", extra={"kids": sorted(keys)})
            self._keys = keys
            self._fetched_at = monotonic()
            if retired and self.on_retired is not None:
                self.on_retired(retired)
        finally:
            self._inflight = None

    async def keep_fresh(self) -> None:
        """Background task: load the keys at start, then refetch them every max_age."""
        while True:
            await self.refresh()
            never_loaded = self._fetched_at is None
            await asyncio.sleep(NEVER_LOADED_RETRY_SECONDS if never_loaded else self._max_age)

    async def close(self) -> None:
        task = self._inflight
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class TokenVerifier:
    def __init__(
        self,
        keys: JwksCache,
        *,
        issuer: str,
        audience: str,
        cache_size: int = 10_000,
        revoked: Container[str] = frozenset(),
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._cache_size = cache_size
        self._revoked = revoked
        self._verified: dict[str, Identity] = {}
        keys.on_retired = self._forget_keys

    async def verify(self, token: str) -> Identity:
        """The token's identity, or InvalidToken (401) / KeysUnavailable (503)."""
        identity = self._verified.get(token)
        if identity is None:
            try:
                identity = await self._verify_signature(token)
            except InvalidToken:
                token_checked("rejected")
                raise
            self._remember(token, identity)
            result = "verified"
        elif identity.expires_at <= wall_time():
            del self._verified[token]
            token_checked("rejected")
            raise InvalidToken("expired")
        else:
            result = "cached"
        if identity.session_id in self._revoked:
            token_checked("rejected")
            raise InvalidToken("revoked session")
        token_checked(result)
        return identity

    async def _verify_signature(self, token: str) -> Identity:
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("token too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no key id")
        key = await self._keys.key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": list(REQUIRED_CLAIMS), "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        return _identity(claims, kid)

    def _remember(self, token: str, identity: Identity) -> None:
        if self._cache_size <= 0:
            return
        if len(self._verified) >= self._cache_size:
            now = wall_time()
            expired = [t for t, i in self._verified.items() if i.expires_at <= now]
            for stale in expired or list(self._verified)[: max(1, self._cache_size // 10)]:
                del self._verified[stale]  # expired first, else the oldest tenth
        self._verified[token] = identity

    def _forget_keys(self, kids: set[str]) -> None:
        """Tokens signed with a key that left the JWKS are checked again (and refused)."""
        for token in [t for t, i in self._verified.items() if i.key_id in kids]:
            del self._verified[token]


def _identity(claims: dict[str, Any], kid: str) -> Identity:
    sub, role, sid, jti = (claims.get(name) for name in ("sub", "role", "sid", "jti"))
    if not (isinstance(sub, str) and sub and isinstance(sid, str) and isinstance(jti, str)):
        raise InvalidToken("sub, sid and jti must be strings")
    if role not in ROLES:
        raise InvalidToken(f"unknown role {role!r}")
    iat = claims["iat"]
    if not isinstance(iat, int | float) or iat > wall_time() + CLOCK_SKEW_SECONDS:
        raise InvalidToken("iat is not a time in the past")
    return Identity(
        user_id=sub,
        role=role,
        session_id=sid,
        token_id=jti,
        expires_at=float(claims["exp"]),
        key_id=kid,
    )
