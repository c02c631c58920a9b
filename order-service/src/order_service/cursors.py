"""What GET /orders asks for (filters) and the opaque cursor that continues it.

A cursor holds the number of the last order sent, a fingerprint of the filters it was made
with and a checksum, in URL-safe base64. The checksum catches edited or truncated cursors;
it is no secret: a forged cursor only moves the start of a query the caller may run anyway
(the user filter comes from the caller, not from the cursor).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass

MAX_CURSOR_LENGTH = 512
_CHECKSUM_BYTES = 16
_CHECKSUM_KEY = b"order-service cursor v1"
_VERSION = 1
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class InvalidCursor(ValueError):
    """The cursor was not made by this service for these filters."""


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Whose orders (None: everyone's, for an ADMIN) and which status."""

    user_id: uuid.UUID | None = None
    status: str | None = None

    def fingerprint(self) -> str:
        parts = [self.user_id.hex if self.user_id else None, self.status]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def encode_cursor(filters: OrderFilter, last_number: int) -> str:
    payload = {"v": _VERSION, "f": filters.fingerprint(), "n": last_number}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw + _checksum(raw)).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, *, filters: OrderFilter) -> int:
    """The number of the last order of the previous page."""
    if len(cursor) > MAX_CURSOR_LENGTH or not _BASE64URL.fullmatch(cursor):
        raise InvalidCursor("is not a cursor from this API")
    try:
        token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except binascii.Error:
        raise InvalidCursor("is not a cursor from this API") from None
    raw, checksum = token[:-_CHECKSUM_BYTES], token[-_CHECKSUM_BYTES:]
    if len(token) <= _CHECKSUM_BYTES or not hmac.compare_digest(checksum, _checksum(raw)):
        raise InvalidCursor("is not a cursor from this API")
    try:
        payload = json.loads(raw)
    except ValueError:
        raise InvalidCursor("is not a cursor from this API") from None
    if not isinstance(payload, dict) or payload.get("v") != _VERSION:
        raise InvalidCursor("is not a cursor from this API")
    if payload.get("f") != filters.fingerprint():
        raise InvalidCursor("was made for other filters")
    number = payload.get("n")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise InvalidCursor("is not a cursor from this API")
    return number


def _checksum(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, key=_CHECKSUM_KEY, digest_size=_CHECKSUM_BYTES).digest()
