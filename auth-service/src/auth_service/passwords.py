"""Password rules and hashing: NFKC, an HMAC-SHA256 pre-hash, then bcrypt in a thread.

The pre-hash lets every character count although bcrypt reads at most 72 bytes; see
docs/decisions/auth-password-hashing.md for the scheme and why it was chosen.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata

import anyio.to_thread
import bcrypt

MIN_LENGTH = 8
MAX_LENGTH = 128
# A public, fixed domain-separation key, not a secret pepper: it only makes our bcrypt
# inputs differ from the plain SHA-256 digests that other systems may have leaked.
PREHASH_KEY = b"shop-auth/password-prehash/v1"


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def password_problem(password: str) -> str | None:
    """Why the (already normalised) password is not acceptable, or None."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"must be {MIN_LENGTH} to {MAX_LENGTH} characters long"
    return None


def prehash(password: str) -> bytes:
    """44 ASCII bytes that depend on every character of the NFKC form of `password`."""
    digest = hmac.new(PREHASH_KEY, normalize(password).encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest)


class PasswordHasher:
    """bcrypt with the configured cost, always off the event loop."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self._dummy_hash: bytes | None = None

    async def prepare(self) -> None:
        """Make the dummy hash now, so the first unknown-email login is not the slow one."""
        await self._dummy()

    async def hash(self, password: str) -> str:
        hashed = await anyio.to_thread.run_sync(self._hash_sync, password)
        return hashed.decode("ascii")

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Check `password`; with no hash (unknown account) spend the same time and fail."""
        if password_hash is None:
            dummy = await self._dummy()
            await anyio.to_thread.run_sync(bcrypt.checkpw, prehash(password), dummy)
            return False
        return await anyio.to_thread.run_sync(
            bcrypt.checkpw, prehash(password), password_hash.encode("ascii")
        )

    async def _dummy(self) -> bytes:
        # A hash of a random password with the same cost as real ones, made once: checking
        # against it takes as long as checking a real account's hash.
        if self._dummy_hash is None:
            self._dummy_hash = await anyio.to_thread.run_sync(
                self._hash_sync, secrets.token_urlsafe(16)
            )
        return self._dummy_hash

    def _hash_sync(self, password: str) -> bytes:
        return bcrypt.hashpw(prehash(password), bcrypt.gensalt(self.rounds))
