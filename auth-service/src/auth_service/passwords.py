"""Password rules and hashing: NFKC, an HMAC-SHA256 pre-hash, then bcrypt in a thread.

The pre-hash lets every character count although bcrypt reads at most 72 bytes; see
docs/decisions/auth-password-hashing.md for the scheme and why it was chosen. Everything
whose cost grows with a password's length (NFKC, the length rule on its result, the
HMAC) runs in the thread with bcrypt, never on the event loop; on the loop a password
only meets the raw cap (a len()) and a C-speed Unicode check (auth-inputs.md).
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
# No character's NFKC (or NFKD) form is longer than 18 code points (U+FDFA; UAX #15's
# maximum expansion factor), and NFKD never shortens text, so a text of more than
# 18 * 128 code points has an NFKC form longer than 128: it can never be a valid
# password nor match one. Checked before any normalisation.
MAX_NFKC_EXPANSION = 18
MAX_RAW_LENGTH = MAX_NFKC_EXPANSION * MAX_LENGTH
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


def new_password_problem_sync(password: str) -> str | None:
    """password_problem of the NFKC form of `password` (as sent)."""
    return password_problem(normalize(password))


async def new_password_problem(password: str) -> str | None:
    """new_password_problem_sync in a thread: NFKC takes up to ~2 ms at the raw cap."""
    return await anyio.to_thread.run_sync(new_password_problem_sync, password)


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
            await anyio.to_thread.run_sync(self._verify_sync, password, dummy)
            return False
        return await anyio.to_thread.run_sync(
            self._verify_sync, password, password_hash.encode("ascii")
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

    @staticmethod
    def _verify_sync(password: str, password_hash: bytes) -> bool:
        # The pre-hash (NFKC + HMAC) is computed here, in the thread, not as an argument
        # evaluated on the event loop before the thread starts.
        return bcrypt.checkpw(prehash(password), password_hash)
