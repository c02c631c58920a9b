"""What a list request asks for (filters, sort) and the opaque cursor that continues it.

A cursor holds the sort, the sort key and id of the last item sent, a fingerprint of
the filters and a checksum, in URL-safe base64. The checksum catches edited or
truncated cursors; it is not a secret, since a forged but well-formed cursor can only
move the starting point of a query the caller could ask for anyway.
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
from datetime import UTC, datetime
from typing import Literal, get_args

Sort = Literal["created_at", "-created_at", "price", "-price", "name", "-name"]
SORTS: tuple[Sort, ...] = get_args(Sort)
DEFAULT_SORT: Sort = "-created_at"
MAX_CURSOR_LENGTH = 4096
_CHECKSUM_BYTES = 16
_CHECKSUM_KEY = b"product-service cursor v1"
_VERSION = 1
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")

SortValue = datetime | int | str


class InvalidCursor(ValueError):
    """The cursor was not made by this service for this sort and these filters."""


@dataclass(frozen=True, slots=True)
class ProductFilter:
    """Filters of GET /products, already normalised (q case-folded, bounds in cents)."""

    q: str | None = None
    min_cents: int | None = None
    max_cents: int | None = None
    owner_id: uuid.UUID | None = None

    def fingerprint(self) -> str:
        parts = [
            self.q,
            self.min_cents,
            self.max_cents,
            self.owner_id.hex if self.owner_id else None,
        ]
        raw = json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Position:
    """The sort key and id of the last item of a page: the next page starts after it."""

    value: SortValue
    id: uuid.UUID


def sort_column(sort: Sort) -> str:
    """The attribute of Product a sort orders by (before the id tie-break)."""
    return {"created_at": "created_at", "price": "price_cents", "name": "name_lower"}[
        sort.lstrip("-")
    ]


def encode_cursor(sort: Sort, filters: ProductFilter, position: Position) -> str:
    value = position.value
    key: str | int = value.isoformat() if isinstance(value, datetime) else value
    payload = {
        "v": _VERSION,
        "s": sort,
        "f": filters.fingerprint(),
        "k": key,
        "i": position.id.hex,
    }
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    token = raw + _checksum(raw)
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, *, sort: Sort, filters: ProductFilter) -> Position:
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
    if payload.get("s") != sort:
        raise InvalidCursor("was made for another sort")
    if payload.get("f") != filters.fingerprint():
        raise InvalidCursor("was made for other filters")
    return Position(value=_sort_value(sort, payload.get("k")), id=_uuid(payload.get("i")))


def _sort_value(sort: Sort, key: object) -> SortValue:
    column = sort_column(sort)
    if column == "price_cents" and isinstance(key, int) and not isinstance(key, bool):
        return key
    if column == "name_lower" and isinstance(key, str):
        return key
    if column == "created_at" and isinstance(key, str):
        try:
            moment = datetime.fromisoformat(key)
        except ValueError:
            raise InvalidCursor("is not a cursor from this API") from None
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
    raise InvalidCursor("is not a cursor from this API")


def _uuid(value: object) -> uuid.UUID:
    if isinstance(value, str):
        try:
            return uuid.UUID(hex=value)
        except ValueError:
            pass
    raise InvalidCursor("is not a cursor from this API")


def _checksum(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, key=_CHECKSUM_KEY, digest_size=_CHECKSUM_BYTES).digest()
