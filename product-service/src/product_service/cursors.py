"""What a list request asks for (filters, sort) and the opaque cursor that continues it.

A cursor (shop_common.cursors) holds the sort, the sort key and id of the last item sent
and a fingerprint of the filters.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from shop_common.cursors import InvalidCursor, not_ours, open_cursor, seal_cursor

__all__ = [
    "DEFAULT_SORT",
    "MAX_CURSOR_LENGTH",
    "SORTS",
    "InvalidCursor",
    "Position",
    "ProductFilter",
    "Sort",
    "SortValue",
    "decode_cursor",
    "encode_cursor",
    "sort_column",
]

Sort = Literal["created_at", "-created_at", "price", "-price", "name", "-name"]
SORTS: tuple[Sort, ...] = get_args(Sort)
DEFAULT_SORT: Sort = "-created_at"
MAX_CURSOR_LENGTH = 4096
_CURSOR_KEY = b"product-service cursor v1"
_VERSION = 1

SortValue = datetime | int | str


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
    return seal_cursor(payload, key=_CURSOR_KEY)


def decode_cursor(cursor: str, *, sort: Sort, filters: ProductFilter) -> Position:
    payload = open_cursor(cursor, key=_CURSOR_KEY, max_length=MAX_CURSOR_LENGTH)
    if payload.get("v") != _VERSION:
        raise not_ours()
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
            raise not_ours() from None
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
    raise not_ours()


def _uuid(value: object) -> uuid.UUID:
    if isinstance(value, str):
        try:
            return uuid.UUID(hex=value)
        except ValueError:
            pass
    raise not_ours()
