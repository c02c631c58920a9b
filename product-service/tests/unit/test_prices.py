from __future__ import annotations

from decimal import Decimal

import pytest

from product_service.prices import (
    InvalidPrice,
    cents_to_json,
    highest_cents_at_or_below,
    lowest_cents_at_or_above,
    parse_price_bound,
    price_cents,
)
from shop_common.json_body import loads_exact


def json_number(text: str) -> object:
    """The value JsonBodyGuard hands to validation for this JSON number text."""
    return loads_exact(text.encode())


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        pytest.param("19.99", 1999, id="19.99"),
        pytest.param("0.1", 10, id="0.1"),
        pytest.param("1e2", 10000, id="1e2"),
        pytest.param("1000000000", 100_000_000_000, id="the-maximum"),
        pytest.param("1.000", 100, id="trailing-zeros"),
        pytest.param("1999e-2", 1999, id="negative-exponent"),
        pytest.param("0", 0, id="zero"),
        pytest.param("-0", 0, id="negative-zero-int"),
        pytest.param("0e999999999", 0, id="zero-with-huge-exponent"),
        pytest.param("999999999.99", 99_999_999_999, id="largest-with-cents"),
        pytest.param("1E+2", 10000, id="capital-exponent"),
        pytest.param("1." + "0" * 4310, 100, id="4310-zero-decimals"),
        pytest.param("19.99" + "0" * 100_000, 1999, id="100000-decimals"),
    ],
)
def test_accepts_json_numbers_with_at_most_two_decimal_places(text: str, cents: int) -> None:
    assert price_cents(json_number(text)) == cents


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("19.999", id="three-places"),
        pytest.param("0.30000000000000001", id="float-noise"),
        pytest.param("-1", id="negative"),
        pytest.param("-0.01", id="negative-cent"),
        pytest.param("1000000000.01", id="above-maximum"),
        pytest.param("1e999999", id="huge-exponent"),
        pytest.param("1e99999999999999999999", id="exponent-beyond-decimal"),
        pytest.param("1e-999999999", id="tiny"),
        pytest.param("1e-99999999999999999999", id="tiny-beyond-decimal"),
        pytest.param('"19.99"', id="string"),
        pytest.param("true", id="bool"),
        pytest.param("null", id="null"),
        pytest.param("[1]", id="array"),
        pytest.param("1" + "0" * 400, id="huge-int"),
        pytest.param("7" * 4301, id="int-beyond-int-digit-limit"),
        pytest.param("1." + "0" * 4309 + "1", id="4310-decimals"),
        pytest.param("0." + "0" * 100_000 + "1", id="100000-decimals-below-a-cent"),
    ],
)
def test_refuses_values_that_are_not_exact_prices(text: str) -> None:
    with pytest.raises(InvalidPrice):
        price_cents(json_number(text))


def test_refuses_a_float_that_never_came_from_json() -> None:
    with pytest.raises(InvalidPrice):
        price_cents(19.99)


@pytest.mark.parametrize(
    ("cents", "expected"),
    [
        pytest.param(1999, 19.99, id="cents"),
        pytest.param(10, 0.1, id="dime"),
        pytest.param(10000, 100, id="whole"),
        pytest.param(100_000_000_000, 1_000_000_000, id="maximum"),
        pytest.param(99_999_999_999, 999999999.99, id="twelve-digits"),
        pytest.param(0, 0, id="zero"),
    ],
)
def test_writes_prices_as_numbers_whose_text_is_the_exact_decimal(
    cents: int, expected: float
) -> None:
    number = cents_to_json(cents)
    assert number == expected
    assert isinstance(number, int) == (cents % 100 == 0)
    assert Decimal(repr(number)) == Decimal(cents).scaleb(-2)


def test_every_cent_value_round_trips_through_a_double() -> None:
    # Spot check across magnitudes: repr of the double is the decimal itself.
    for cents in [1, 7, 99, 101, 12345, 33333333333, 99_999_999_999, 10_000_000_001]:
        assert Decimal(repr(cents_to_json(cents))) * 100 == cents


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        pytest.param("10", 1000, 1000, id="whole"),
        pytest.param("10.005", 1001, 1000, id="between-cents"),
        pytest.param("0.0000000000000000000000000000000001", 1, 0, id="tiny-many-places"),
        pytest.param("19.999999999999999999999999999999999", 2000, 1999, id="beyond-precision"),
        pytest.param("1e-999999999", 1, 0, id="tiny-exponent"),
        pytest.param("1000000000", 100_000_000_000, 100_000_000_000, id="maximum"),
        pytest.param("0", 0, 0, id="zero"),
        pytest.param("1.5e1", 1500, 1500, id="exponent"),
        pytest.param("1." + "0" * 4400, 100, 100, id="4400-zero-decimals"),
        pytest.param("1." + "0" * 4400 + "1", 101, 100, id="4401-decimals"),
        pytest.param("9" * 9 + "." + "9" * 5000, 100_000_000_000, 99_999_999_999, id="5009-nines"),
    ],
)
def test_query_bounds_round_to_the_cents_they_include(text: str, low: int, high: int) -> None:
    bound = parse_price_bound(text)
    assert lowest_cents_at_or_above(bound) == low
    assert highest_cents_at_or_below(bound) == high


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("-1", id="negative"),
        pytest.param("NaN", id="nan"),
        pytest.param("Infinity", id="infinity"),
        pytest.param("1000000000.001", id="above-maximum"),
        pytest.param("1e99999999999999999999", id="exponent-beyond-decimal"),
        pytest.param("abc", id="text"),
        pytest.param("", id="empty"),
        pytest.param(" 1", id="space"),
        pytest.param("1_000", id="underscore"),
        pytest.param("0x10", id="hex"),
        pytest.param("7" * 4400, id="4400-digit-integer"),
    ],
)
def test_query_bounds_refuse_what_is_not_a_price(text: str) -> None:
    with pytest.raises(InvalidPrice):
        parse_price_bound(text)
