"""Ed25519 signing keys shared by every replica: one PEM file per key in a directory.

A key id (kid) is the key's creation time plus a random suffix, so ids sort by age. The
newest key that every replica has had time to load signs; every key in the directory is
published in the JWKS until `keys rotate` prunes those whose tokens have all expired.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shop_common.keys import load_private_key, private_pem, write_exclusive

logger = logging.getLogger(__name__)

KID_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
_KID = re.compile(r"(\d{8}T\d{12}Z)-[0-9a-f]{8}")
# Slack for clock skew between hosts and for the verifiers' leeway when pruning.
PRUNE_MARGIN = timedelta(minutes=5)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class NoSigningKey(Exception):
    """The key directory holds no usable key."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    created_at: datetime
    private_key: Ed25519PrivateKey

    def public_jwk(self) -> dict[str, str]:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": x,
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }


def new_kid(now: datetime) -> str:
    return f"{now.astimezone(UTC).strftime(KID_TIME_FORMAT)}-{secrets.token_hex(4)}"


def kid_created_at(kid: str) -> datetime | None:
    match = _KID.fullmatch(kid)
    if match is None:
        return None
    return datetime.strptime(match.group(1), KID_TIME_FORMAT).replace(tzinfo=UTC)


def key_ids(directory: Path) -> list[str]:
    """The kids of the key files in `directory`, oldest first; other files are ignored."""
    if not directory.is_dir():
        return []
    return sorted(
        path.stem for path in directory.glob("*.pem") if kid_created_at(path.stem) is not None
    )


def create_key(directory: Path, now: datetime | None = None) -> str:
    """Write a new private key file (mode 0600) and return its kid."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    while True:
        kid = new_kid(now or _utc_now())
        if write_exclusive(directory / f"{kid}.pem", private_pem(Ed25519PrivateKey.generate())):
            return kid


@contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    with (directory / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_key(directory: Path) -> str | None:
    """Create the first key if the directory has none; the new kid, or None if one existed.

    Replicas starting together serialise on a lock file, so they create one key, not one
    each. A directory that already holds keys (e.g. a read-only mounted secret) is only read.
    """
    if key_ids(directory):
        return None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _directory_lock(directory):
        if key_ids(directory):
            return None
        return create_key(directory)


def retired_kids(kids: list[str], *, now: datetime, retain: timedelta) -> list[str]:
    """Keys that stopped signing more than `retain` ago; the newest key is never retired."""
    retired = []
    for kid, successor in zip(kids, kids[1:], strict=False):
        superseded_at = kid_created_at(successor)
        if superseded_at is not None and now - superseded_at > retain:
            retired.append(kid)
    return retired


def rotate_keys(
    directory: Path, *, retain: timedelta, now: datetime | None = None
) -> tuple[str, list[str]]:
    """Add a new key, then delete the keys no live token can have been signed with.

    `retain` must cover the new key's activation delay, the replicas' reload interval
    and the access-token lifetime; PRUNE_MARGIN is added for clock skew.
    """
    now = now or _utc_now()
    kid = create_key(directory, now)
    pruned = retired_kids(key_ids(directory), now=now, retain=retain + PRUNE_MARGIN)
    for old in pruned:
        (directory / f"{old}.pem").unlink(missing_ok=True)
    return kid, pruned


class KeyRing:
    """The keys of one directory as this process last read them."""

    def __init__(
        self, directory: Path, *, activation_seconds: float, clock: Clock = _utc_now
    ) -> None:
        self.directory = directory
        self._activation = timedelta(seconds=activation_seconds)
        self._clock = clock
        self._keys: tuple[SigningKey, ...] = ()

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        return self._keys

    def reload(self) -> None:
        """Re-read the directory; a failed or empty read keeps the keys already loaded."""
        known = {key.kid: key for key in self._keys}
        loaded: list[SigningKey] = []
        for kid in key_ids(self.directory):
            key = known.get(kid) or self._load(kid)
            if key is not None:
                loaded.append(key)
        if loaded:
            self._keys = tuple(loaded)
        else:
            logger.error("no usable signing key in %s", self.directory)

    def _load(self, kid: str) -> SigningKey | None:
        created_at = kid_created_at(kid)
        assert created_at is not None
        try:
            private_key = load_private_key(self.directory / f"{kid}.pem")
        except (OSError, ValueError, TypeError):
            logger.error("unreadable signing key file", extra={"kid": kid})
            return None
        return SigningKey(kid=kid, created_at=created_at, private_key=private_key)

    def signing_key(self) -> SigningKey:
        """The newest key older than the activation delay (the oldest while all are newer)."""
        if not self._keys:
            raise NoSigningKey(f"no signing key in {self.directory}")
        now = self._clock()
        active = [key for key in self._keys if now - key.created_at >= self._activation]
        return active[-1] if active else self._keys[0]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in reversed(self._keys)]}
