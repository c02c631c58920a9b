"""The credential minted for each request one process sends another, and its check.

A short-lived EdDSA JWT in the X-Gateway-Credential header, minted for one request only:
`iss` who minted it ("api-gateway" for a client's request, a service's name for a call
between services), `aud` the target service, `sub`/`role`/`sid` of the user the request
acts for (absent when anonymous), `rid` the request id (the X-Request-ID sent with it),
`htm` the method, `htu` the path as sent and `htq` a SHA-256 of the query (absent when
there is none), `iat`/`exp` at most 60 s apart, a random `jti`, and `dl` the request's
deadline (epoch milliseconds, set strictly before the minter stops waiting for the answer:
past it the receiver refuses the request and never commits its work; shop_common.deadline,
docs/decisions/request-deadline.md). Only the minter holds
its private key, so a request that did not come from it cannot carry one, and the
binding makes a captured credential worthless for any other request
(docs/decisions/0002-gateway-credential.md, gateway-credential-cache.md).

The JWS is built and parsed here (orjson, base64, one Ed25519 operation) rather than by
PyJWT: the same token, in a fraction of the time, and only this one algorithm exists.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CREDENTIAL_HEADER = "x-gateway-credential"
GATEWAY = "api-gateway"
ISSUER = GATEWAY  # the minter of a client's request
ALGORITHM = "EdDSA"
MAX_LIFETIME_SECONDS = 60
DEFAULT_LIFETIME_SECONDS = 30
LEEWAY_SECONDS = 5
# How much earlier than the moment the minter gives up the `dl` claim lies: room for the
# receiver's clock running behind the minter's and for the COMMIT and the answer's trip
# back (docs/decisions/request-deadline.md). A quarter of a short timeout at most.
DEADLINE_MARGIN_SECONDS = 1.0
# The replay cache's bound: past it the oldest jti goes (the binding still holds).
REPLAY_CACHE_ENTRIES = 200_000
MAX_TOKEN_LENGTH = 4096
Role = Literal["USER", "ADMIN"]
ROLES: frozenset[str] = frozenset({"USER", "ADMIN"})

_HEADER_B64 = base64.urlsafe_b64encode(b'{"alg":"EdDSA","typ":"JWT"}').rstrip(b"=")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who the request acts for; user_id and role are None for anonymous calls.

    `issuer` is who minted the credential and `deadline` (epoch seconds) when its minter
    stops waiting for the answer, minus a margin (both set by the verifier; ignored when
    minting, where the signer's own name and `mint`'s deadline are used).
    """

    user_id: str | None
    role: Role | None
    session_id: str | None = None
    # Set by the gateway when a per-email limit (login, register) is exhausted: the
    # service validates the body first (422 wins over this 429, as the contract orders)
    # and then answers 429 with this Retry-After instead of doing the work.
    email_retry_after: int | None = None
    issuer: str = GATEWAY
    deadline: float | None = None
    # The credential's `jti` (set by the verifier): unique to the request, and the same when
    # the gateway sends the very request again after its first instance died with it.
    # Not part of who the caller is: two credentials for the same caller compare equal.
    credential_id: str | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "ADMIN"


@dataclass(frozen=True, slots=True)
class RequestBinding:
    """The request a credential is for: what the minter sends and the receiver reads.

    `path` is the path exactly as on the request line (percent-encoding kept, no query);
    `query` the raw query string without "?" (b"" when none).
    """

    method: str
    path: str
    query: bytes
    request_id: str

    @classmethod
    def of_target(cls, method: str, target: str, request_id: str) -> RequestBinding:
        """From a request target as sent: "/path?query"."""
        path, _, query = target.partition("?")
        return cls(method, path, query.encode("latin-1"), request_id)


class InvalidCredential(Exception):
    """The request carries no valid credential minted for it and this service."""


class CredentialPastDeadline(InvalidCredential):
    """A valid credential whose request's deadline has passed: its minter has given up (or
    is about to), so the request must not be worked on (503, not 401)."""

    def __init__(self, caller: Caller) -> None:
        super().__init__("the request's deadline has passed")
        self.caller = caller


def deadline_after(timeout: float, *, now: float | None = None) -> float:
    """The `dl` for a request its minter waits `timeout` seconds for, sent now: earlier
    than the moment the minter gives up by DEADLINE_MARGIN_SECONDS (a quarter of a
    timeout under 4 s)."""
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    start = time.time() if now is None else now
    return start + timeout - min(DEADLINE_MARGIN_SECONDS, timeout / 4)


class CredentialSigner:
    """Mints credentials in the name of `issuer` with its private key; one per request."""

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        lifetime: int = DEFAULT_LIFETIME_SECONDS,
        *,
        issuer: str = GATEWAY,
    ) -> None:
        if not 0 < lifetime <= MAX_LIFETIME_SECONDS:
            raise ValueError("a credential lives at most 60 seconds")
        self._key = private_key
        self._lifetime = lifetime
        self.issuer = issuer

    def mint(
        self,
        *,
        audience: str,
        caller: Caller,
        request: RequestBinding,
        deadline: float | None = None,
    ) -> str:
        """A new credential for this one request to `audience` (never reused); with
        `deadline` (epoch seconds, see deadline_after) the receiver refuses to work on, or
        commit, the request past it."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "iat": now,
            "exp": now + self._lifetime,
            "jti": secrets.token_urlsafe(12),
            "rid": request.request_id,
            "htm": request.method,
            "htu": request.path,
        }
        if request.query:
            claims["htq"] = query_digest(request.query)
        if caller.user_id is not None:
            claims["sub"] = caller.user_id
            claims["role"] = caller.role
        if caller.session_id is not None:
            claims["sid"] = caller.session_id
        if caller.email_retry_after is not None:
            claims["era"] = caller.email_retry_after
        if deadline is not None:
            claims["dl"] = int(deadline * 1000)  # rounded down: never later than asked
        signing_input = _HEADER_B64 + b"." + _b64encode(orjson.dumps(claims))
        signature = _b64encode(self._key.sign(signing_input))
        return (signing_input + b"." + signature).decode("ascii")


class CredentialVerifier:
    """Checks credentials for `audience`, minted by one of `keys` (minter -> public key).

    Each `jti` is accepted once (per verifier, until its credential expires): a copy of
    a request sent again to the same process is refused even within its binding.
    """

    def __init__(
        self, keys: Mapping[str, Ed25519PublicKey] | Ed25519PublicKey, audience: str
    ) -> None:
        """`keys` by minter; a single key is the gateway's."""
        if isinstance(keys, Ed25519PublicKey):
            keys = {GATEWAY: keys}
        if not keys:
            raise ValueError("a verifier needs at least one minter's public key")
        self._keys = dict(keys)
        self._audience = audience
        self._seen: dict[str, float] = {}  # jti -> when it may be forgotten, in time order

    @property
    def issuers(self) -> frozenset[str]:
        return frozenset(self._keys)

    def verify(self, token: str, request: RequestBinding) -> Caller:
        """The caller a valid credential for this request names; InvalidCredential else,
        CredentialPastDeadline when it is valid but its `dl` has passed.

        The claims are checked before the signature (same answer either way): a flood of
        made-up credentials costs a JSON parse each, not an Ed25519 verification.
        """
        claims, verify_signature = self._parse(token)
        now = time.time()
        expires = claims["exp"]
        if not isinstance(expires, int) or isinstance(expires, bool):
            raise InvalidCredential("credential has no valid exp")
        issued = claims["iat"]
        if not isinstance(issued, int) or isinstance(issued, bool):
            raise InvalidCredential("credential has no valid iat")
        if expires - issued > MAX_LIFETIME_SECONDS or expires <= issued:
            raise InvalidCredential("credential lifetime over 60 seconds")
        if now > expires + LEEWAY_SECONDS:
            raise InvalidCredential("credential expired")
        if issued > now + LEEWAY_SECONDS:
            raise InvalidCredential("credential issued in the future")
        if claims.get("aud") != self._audience:
            raise InvalidCredential("credential is for another service")
        _check_binding(claims, request)
        caller = _caller_of(claims)
        verify_signature()
        self._remember(claims.get("jti"), expires + LEEWAY_SECONDS, now)
        # No leeway here: a clock behind the minter's is what DEADLINE_MARGIN_SECONDS is for.
        if caller.deadline is not None and now >= caller.deadline:
            raise CredentialPastDeadline(caller)
        return caller

    def _parse(self, token: str) -> tuple[dict[str, Any], Callable[[], None]]:
        """The claims (not yet trusted) and the check of the signature of their issuer."""
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidCredential("credential is not a compact JWS")
        header_b64, payload_b64, signature_b64 = token.encode("ascii", "replace").split(b".")
        if header_b64 != _HEADER_B64:  # ours (and PyJWT's) is known: no need to parse it
            header = _json_object(header_b64, "header")
            if header.get("alg") != ALGORITHM or "crit" in header:
                raise InvalidCredential("credential is not EdDSA")
        claims = _json_object(payload_b64, "payload")
        issuer = claims.get("iss")
        key = self._keys.get(issuer) if isinstance(issuer, str) else None
        if key is None:
            raise InvalidCredential("credential from an unknown issuer")
        if "exp" not in claims or "iat" not in claims:
            raise InvalidCredential("credential lacks exp or iat")

        def verify_signature() -> None:
            try:
                key.verify(_b64decode(signature_b64), header_b64 + b"." + payload_b64)
            except (InvalidSignature, InvalidCredential):
                raise InvalidCredential("credential signature is not valid") from None

        return claims, verify_signature

    def _remember(self, jti: object, forget_at: float, now: float) -> None:
        if not isinstance(jti, str) or not 0 < len(jti) <= 64:
            raise InvalidCredential("credential has no valid jti")
        seen = self._seen
        if jti in seen:
            raise InvalidCredential("credential already used")
        # Oldest first (lifetimes are alike): drop what expired, and the oldest past the bound.
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] >= now and len(seen) < REPLAY_CACHE_ENTRIES:
                break
            del seen[oldest]
        seen[jti] = forget_at


def query_digest(query: bytes) -> str:
    """The `htq` claim: SHA-256 of the raw query string, base64url (a query may be long)."""
    return _b64encode(hashlib.sha256(query).digest()).decode("ascii")


def _check_binding(claims: Mapping[str, Any], request: RequestBinding) -> None:
    if claims.get("htm") != request.method:
        raise InvalidCredential("credential is for another method")
    if claims.get("htu") != request.path:
        raise InvalidCredential("credential is for another path")
    htq = claims.get("htq")
    if request.query:
        if htq != query_digest(request.query):
            raise InvalidCredential("credential is for another query")
    elif htq is not None:
        raise InvalidCredential("credential is for another query")
    if claims.get("rid") != request.request_id:
        raise InvalidCredential("credential is for another request id")


def _caller_of(claims: Mapping[str, Any]) -> Caller:
    user_id = claims.get("sub")
    role = claims.get("role")
    session_id = claims.get("sid")
    if user_id is not None and (not isinstance(user_id, str) or role not in ROLES):
        raise InvalidCredential("credential has an unknown role")
    if session_id is not None and not isinstance(session_id, str):
        raise InvalidCredential("credential has a malformed sid")
    return Caller(
        user_id=user_id,
        role=role if user_id is not None else None,
        session_id=session_id,
        email_retry_after=_optional_int(claims.get("era")),
        issuer=claims["iss"],
        deadline=_deadline_of(claims.get("dl")),
        credential_id=jti if isinstance(jti := claims.get("jti"), str) else None,
    )


def _deadline_of(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidCredential("credential has a malformed dl claim")
    return value / 1000


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidCredential("credential has a malformed era claim")
    return value


def _json_object(part: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(_b64decode(part))
    except orjson.JSONDecodeError:
        raise InvalidCredential(f"credential {what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidCredential(f"credential {what} is not a JSON object")
    return value


def _b64encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


_FROM_URLSAFE = bytes.maketrans(b"-_+/", b"+/-_")  # "+" and "/" become invalid


def _b64decode(part: bytes) -> bytes:
    try:
        padded = part.translate(_FROM_URLSAFE) + b"=" * (-len(part) % 4)
        return binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error:
        raise InvalidCredential("credential is not base64url") from None
