"""loads_exact: the one JSON reader of request bodies (services and the gateway's keys)."""

from __future__ import annotations

import json
import sys
from decimal import Decimal

import pytest

from shop_common.json_body import loads_exact

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
        pytest.param("7" * 4301, Decimal("7" * 4301), id="4301-digit-int"),
        pytest.param("-" + "7" * 100_000, Decimal("-" + "7" * 100_000), id="100000-digit-int"),
        pytest.param("1." + "0" * 4400, Decimal(1), id="4400-decimals"),
    ],
)
def test_numbers_of_any_length_are_valid_json_and_exact(text: str, expected: object) -> None:
    value = loads_exact(text.encode())
    assert value == expected
    assert type(value) is type(expected)


def test_integers_up_to_the_interpreters_digit_limit_stay_int() -> None:
    limit = sys.get_int_max_str_digits()
    assert loads_exact(b"9" * limit) == int("9" * limit)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "{", "[1,]", "\x00"])
def test_what_is_not_json_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        loads_exact(text.encode())
