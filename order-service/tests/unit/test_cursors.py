"""Order cursors: a round trip, and every way a cursor can be wrong."""

from __future__ import annotations

import base64
import uuid

import pytest

from order_service.cursors import InvalidCursor, OrderFilter, decode_cursor, encode_cursor

MINE = OrderFilter(user_id=uuid.uuid4(), status=None)


def test_a_cursor_continues_after_the_number_it_was_made_at() -> None:
    assert decode_cursor(encode_cursor(MINE, 42), filters=MINE) == 42


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(OrderFilter(user_id=MINE.user_id, status="paid"), id="another-status"),
        pytest.param(OrderFilter(user_id=uuid.uuid4()), id="another-buyer"),
        pytest.param(OrderFilter(), id="everyone"),
    ],
)
def test_a_cursor_made_with_other_filters_is_refused(other: OrderFilter) -> None:
    with pytest.raises(InvalidCursor, match="other filters"):
        decode_cursor(encode_cursor(MINE, 42), filters=other)


def _edited(cursor: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[10] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("", id="empty"),
        pytest.param("not base64!", id="not-base64"),
        pytest.param("A" * 600, id="too-long"),
        pytest.param("AAAA", id="too-short"),
        pytest.param(_edited(encode_cursor(MINE, 42)), id="edited"),
        pytest.param(encode_cursor(MINE, 42)[:-3], id="truncated"),
    ],
)
def test_a_cursor_not_made_here_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, filters=MINE)
