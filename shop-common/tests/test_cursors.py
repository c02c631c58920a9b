from __future__ import annotations

import base64

import pytest

from shop_common.cursors import InvalidCursor, open_cursor, seal_cursor

KEY = b"test cursor v1"


def test_a_sealed_cursor_opens_to_its_payload() -> None:
    payload = {"v": 1, "k": "naïve", "n": 7}
    cursor = seal_cursor(payload, key=KEY)
    assert "=" not in cursor
    assert open_cursor(cursor, key=KEY, max_length=512) == payload


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("", id="empty"),
        pytest.param("not base64!", id="not-base64url"),
        pytest.param("A", id="not-decodable"),
        pytest.param(base64.urlsafe_b64encode(b"short").decode().rstrip("="), id="too-short"),
        pytest.param(
            base64.urlsafe_b64encode(b"[1]" + bytes(16)).decode().rstrip("="), id="bad-checksum"
        ),
    ],
)
def test_anything_not_sealed_here_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor, match="not a cursor"):
        open_cursor(cursor, key=KEY, max_length=512)


def test_an_edited_or_foreign_or_overlong_cursor_is_refused() -> None:
    cursor = seal_cursor({"n": 1}, key=KEY)
    edited = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    for bad in (edited, cursor[:-1]):
        with pytest.raises(InvalidCursor):
            open_cursor(bad, key=KEY, max_length=512)
    with pytest.raises(InvalidCursor):
        open_cursor(cursor, key=b"another service v1", max_length=512)
    with pytest.raises(InvalidCursor):
        open_cursor(cursor, key=KEY, max_length=len(cursor) - 1)


def test_a_sealed_non_object_is_refused() -> None:
    with pytest.raises(InvalidCursor):
        open_cursor(seal_cursor([1, 2], key=KEY), key=KEY, max_length=512)  # type: ignore[arg-type]
