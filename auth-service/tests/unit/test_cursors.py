import uuid
from datetime import UTC, datetime

import pytest

from auth_service.cursors import MalformedCursor, UserCursor, decode_cursor, encode_cursor


def test_a_cursor_round_trips():
    cursor = UserCursor(created_at=datetime(2026, 11, 25, 7, 15, 0, 123456, UTC), id=uuid.uuid4())
    assert decode_cursor(encode_cursor(cursor)) == cursor


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("not-a-cursor", id="garbage"),
        pytest.param("%%%", id="not base64"),
        pytest.param("MjAyNi0xMS0yNVQwNzoxNTowMA", id="no id"),
        pytest.param("MjAyNi0xMS0yNVQwNzoxNTowMHx4", id="naive time and bad id"),
        pytest.param(
            "MDAwMS0wMS0wMVQwMDowMDowMCswMTowMHwwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA",
            id="time out of range",
        ),
        pytest.param("A" * 400, id="too long"),
        pytest.param("🔑", id="not ascii"),
    ],
)
def test_a_malformed_cursor_is_refused(raw):
    with pytest.raises(MalformedCursor):
        decode_cursor(raw)
