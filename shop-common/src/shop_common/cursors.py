"""The sealed token behind every list's opaque `next_cursor`.

A cursor is a small JSON object with a checksum, in URL-safe base64 without padding. The
checksum (keyed BLAKE2b, the key naming the service and version) catches edited or
truncated cursors; it is no secret: a forged but well-formed cursor only moves the start
of a query its caller may run anyway. What the object holds (the last item's position,
a fingerprint of the filters) is each list's own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

_CHECKSUM_BYTES = 16
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_NOT_OURS = "is not a cursor from this API"


class InvalidCursor(ValueError):
    """The cursor was not made by this service for this list's sort and filters."""


def seal_cursor(payload: dict[str, Any], *, key: bytes) -> str:
    """`payload` as a cursor: compact JSON, its checksum, URL-safe base64."""
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw + _checksum(raw, key)).rstrip(b"=").decode("ascii")


def open_cursor(cursor: str, *, key: bytes, max_length: int) -> dict[str, Any]:
    """The object a cursor sealed with `key` holds; InvalidCursor for anything else."""
    if len(cursor) > max_length or not _BASE64URL.fullmatch(cursor):
        raise InvalidCursor(_NOT_OURS)
    try:
        token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except binascii.Error:
        raise InvalidCursor(_NOT_OURS) from None
    raw, checksum = token[:-_CHECKSUM_BYTES], token[-_CHECKSUM_BYTES:]
    if len(token) <= _CHECKSUM_BYTES or not hmac.compare_digest(checksum, _checksum(raw, key)):
        raise InvalidCursor(_NOT_OURS)
    try:
        payload = json.loads(raw)
    except ValueError:
        raise InvalidCursor(_NOT_OURS) from None
    if not isinstance(payload, dict):
        raise InvalidCursor(_NOT_OURS)
    return payload


def not_ours() -> InvalidCursor:
    """The error for a cursor whose checksum holds but whose content is not a cursor's."""
    return InvalidCursor(_NOT_OURS)


def _checksum(raw: bytes, key: bytes) -> bytes:
    return hashlib.blake2b(raw, key=key, digest_size=_CHECKSUM_BYTES).digest()
