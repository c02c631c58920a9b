from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from product_service.cursors import (
    SORTS,
    InvalidCursor,
    Position,
    ProductFilter,
    Sort,
    SortValue,
    decode_cursor,
    encode_cursor,
)

FILTERS = ProductFilter(q="lamp", min_cents=100, max_cents=5000, owner_id=uuid.uuid4())
ID = uuid.uuid4()


def position_for(sort: Sort) -> Position:
    values: dict[str, SortValue] = {
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "price": 1999,
        "name": "lämp ünïcode",
    }
    return Position(value=values[sort.lstrip("-")], id=ID)


@pytest.mark.parametrize("sort", SORTS)
def test_a_cursor_decodes_to_the_position_it_was_made_from(sort: Sort) -> None:
    position = position_for(sort)
    cursor = encode_cursor(sort, FILTERS, position)
    assert cursor.isascii() and "=" not in cursor
    assert decode_cursor(cursor, sort=sort, filters=FILTERS) == position


@pytest.mark.parametrize(
    "filters",
    [
        pytest.param(ProductFilter(), id="no-filters"),
        pytest.param(ProductFilter(q="lamps"), id="other-q"),
        pytest.param(ProductFilter(q="lamp", min_cents=100, max_cents=5000), id="no-owner"),
        pytest.param(
            ProductFilter(q="lamp", min_cents=101, max_cents=5000, owner_id=FILTERS.owner_id),
            id="other-min",
        ),
    ],
)
def test_a_cursor_is_refused_with_other_filters(filters: ProductFilter) -> None:
    cursor = encode_cursor("price", FILTERS, position_for("price"))
    with pytest.raises(InvalidCursor, match="other filters"):
        decode_cursor(cursor, sort="price", filters=filters)


def test_a_cursor_is_refused_with_another_sort() -> None:
    cursor = encode_cursor("price", FILTERS, position_for("price"))
    with pytest.raises(InvalidCursor, match="another sort"):
        decode_cursor(cursor, sort="-price", filters=FILTERS)


def tampered(cursor: str) -> list[str]:
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    flipped = []
    for index in (0, len(raw) // 2, len(raw) - 1):
        copy = bytearray(raw)
        copy[index] ^= 0x01
        flipped.append(base64.urlsafe_b64encode(bytes(copy)).rstrip(b"=").decode())
    return flipped


def test_a_tampered_cursor_is_refused() -> None:
    cursor = encode_cursor("name", FILTERS, position_for("name"))
    candidates = [
        *tampered(cursor),
        cursor[:-2],
        cursor + "A",
        cursor + "!",
        "",
        "not a cursor",
        "A" * 5000,
        base64.urlsafe_b64encode(b'{"v":1,"s":"name"}' + bytes(16)).decode().rstrip("="),
    ]
    for candidate in candidates:
        with pytest.raises(InvalidCursor):
            decode_cursor(candidate, sort="name", filters=FILTERS)


def test_the_filter_fingerprint_depends_on_every_filter() -> None:
    owner = uuid.uuid4()
    prints = {
        ProductFilter().fingerprint(),
        ProductFilter(q="a").fingerprint(),
        ProductFilter(min_cents=1).fingerprint(),
        ProductFilter(max_cents=1).fingerprint(),
        ProductFilter(owner_id=owner).fingerprint(),
    }
    assert len(prints) == 5
