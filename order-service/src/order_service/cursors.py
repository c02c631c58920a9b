"""What GET /orders asks for (filters) and the opaque cursor that continues it.

A cursor (shop_common.cursors) holds the number of the last order sent and a fingerprint
of the filters it was made with. A forged cursor only moves the start of a query the caller
may run anyway (the user filter comes from the caller, not from the cursor).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from shop_common.cursors import InvalidCursor, not_ours, open_cursor, seal_cursor

__all__ = ["MAX_CURSOR_LENGTH", "InvalidCursor", "OrderFilter", "decode_cursor", "encode_cursor"]

MAX_CURSOR_LENGTH = 512
_CURSOR_KEY = b"order-service cursor v1"
_VERSION = 1


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
    return seal_cursor(payload, key=_CURSOR_KEY)


def decode_cursor(cursor: str, *, filters: OrderFilter) -> int:
    """The number of the last order of the previous page."""
    payload = open_cursor(cursor, key=_CURSOR_KEY, max_length=MAX_CURSOR_LENGTH)
    if payload.get("v") != _VERSION:
        raise not_ours()
    if payload.get("f") != filters.fingerprint():
        raise InvalidCursor("was made for other filters")
    number = payload.get("n")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise not_ours()
    return number
