"""loads_exact: the one JSON reader of request bodies (services and the gateway's keys)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from shop_common.json_body import loads_exact, loads_numbers_as_bytes

DOCUMENT = {"name": "Ada", "note": "naïve ✓"}


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"]
)
def test_every_json_encoding_reads_the_same_document(encoding: str) -> None:
    raw = json.dumps(DOCUMENT, ensure_ascii=False).encode(encoding)
    assert loads_exact(raw) == DOCUMENT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("4301", 4301, id="small-int"),
        pytest.param("19.99", Decimal("19.99"), id="fraction-is-decimal"),
        pytest.param("1e2", Decimal("100"), id="exponent-is-decimal"),
        pytest.param("7" * 4300, int("7" * 4300), id="4300-digit-int"),
        pytest.param("1." + "0" * 4400, Decimal(1), id="4400-decimals"),
        pytest.param("1." + "0" * 4400 + "1", Decimal("1." + "0" * 4400 + "1"), id="4401-places"),
        pytest.param("7" * 4301, Decimal("1E+4300"), id="4301-digit-int-saturates"),
        pytest.param("-" + "7" * 100_000, Decimal("-1E+4300"), id="100000-digit-int-saturates"),
        pytest.param("1e999999999", Decimal("1E+4300"), id="huge-exponent-saturates"),
        pytest.param("-7.5e4300", Decimal("-1E+4300"), id="negative-huge-saturates"),
        pytest.param("7.5e4299", Decimal("7.5e4299"), id="just-below-saturation"),
        pytest.param("-0e999999999", Decimal("-0e999999999"), id="zero-never-saturates"),
    ],
)
def test_numbers_of_any_length_are_valid_json(text: str, expected: object) -> None:
    value = loads_exact(text.encode())
    assert value == expected
    assert type(value) is type(expected)


def test_integers_up_to_the_interpreters_digit_limit_stay_int() -> None:
    limit = sys.get_int_max_str_digits()
    assert loads_exact(b"9" * limit) == int("9" * limit)


@pytest.mark.parametrize(
    "text", ["7" * 4301, "-" + "7" * 300_000, "1e999999999", "1" + "0" * 5000 + ".5"]
)
def test_a_huge_number_is_out_of_range_for_a_lax_int_field(text: str) -> None:
    # pydantic's lax int converts a Decimal whole (as_integer_ratio): a 300,000-digit
    # integer took 11 s and 1e999999999 never ended before saturation.
    field = TypeAdapter(Annotated[int, Field(ge=1, le=1000)])
    with pytest.raises(ValidationError) as caught:
        field.validate_python(loads_exact(text.encode()))
    assert caught.value.errors()[0]["type"] in {"less_than_equal", "greater_than_equal"}


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "{", "[1,]", "\x00"])
def test_what_is_not_json_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        loads_exact(text.encode())


def _strings_of(document: object) -> object:
    """The document with every number replaced by a marker: what both readers share."""
    if isinstance(document, dict):
        return {key: _strings_of(value) for key, value in document.items()}
    if isinstance(document, list):
        return [_strings_of(value) for value in document]
    if isinstance(document, bool | str) or document is None:
        return document
    assert isinstance(document, int | Decimal | bytes)  # a number, read either way
    return "<number>"


AGREEMENT = [
    b'{"email": "a@example.com", "password": "x"}',
    b'\xef\xbb\xbf{"email": "a@example.com"}',
    '{"email": "ａ@example.com", "n": [1, 2.5, -0, 1e999999999]}'.encode("utf-16"),
    '{"e": "x", "e": "y"}'.encode("utf-32-be"),
    b'{"n": ' + b"7" * 5000 + b', "m": 1.' + b"0" * 5000 + b"}",
    b'{"email": "\\ud800"}',
    b'{"email": "a@example.com"} ',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"email": NaN}',
    b'{"email": Infinity}',
    b'{"email": "a@example.com",}',
    b'{"email": "a@example.com"} x',
    b"\xff\xfe\x00",
    b'{"email": "\xe9"}',
    b"",
]


@pytest.mark.parametrize("raw", AGREEMENT)
def test_the_string_reader_refuses_and_reads_exactly_what_loads_exact_does(raw: bytes) -> None:
    def outcome(loader: Callable[[bytes], Any]) -> object:
        try:
            return _strings_of(loader(raw))
        except (ValueError, RecursionError) as exc:
            return type(exc)

    assert outcome(loads_numbers_as_bytes) == outcome(loads_exact)


def test_the_string_reader_leaves_numbers_as_the_bytes_of_their_text() -> None:
    assert loads_numbers_as_bytes(b'[1, 2.50, 1e999999999, -0, "7"]') == [
        b"1",
        b"2.50",
        b"1e999999999",
        b"-0",
        "7",
    ]
