"""Prices as exact integer minor units: parsing JSON numbers and query bounds, and output.

Every step works on the digits and exponent of the Decimal, never on a float and
never through a Decimal context, so no value is rounded and no exponent, however
large (1e999999999), can overflow or take long.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Literal

MAX_PRICE = Decimal(1_000_000_000)
MAX_PRICE_CENTS = 100_000_000_000
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class InvalidPrice(ValueError):
    """The value is not an allowed price; the message is for the client."""


def price_cents(value: object) -> int:
    """The cents of a price read from JSON (int, or Decimal for numbers with a fraction)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidPrice("must be a JSON number")
    number = Decimal(value)
    _check_range(number)
    cents = _scaled_to_cents(number, "exact")
    if cents is None:
        raise InvalidPrice("must have at most 2 decimal places")
    return cents


def parse_price_bound(text: str) -> Decimal:
    """A min_price / max_price query value: any decimal places, within the price range."""
    if not _DECIMAL_TEXT.fullmatch(text):
        raise InvalidPrice("must be a decimal number")
    try:
        number = Decimal(text)
    except InvalidOperation:  # an exponent beyond what Decimal can hold
        raise InvalidPrice("must be between 0 and 1000000000") from None
    _check_range(number)
    return number


def lowest_cents_at_or_above(number: Decimal) -> int:
    """ceil(number * 100): the smallest price in cents that is >= number."""
    cents = _scaled_to_cents(number, "ceiling")
    assert cents is not None
    return cents


def highest_cents_at_or_below(number: Decimal) -> int:
    """floor(number * 100): the largest price in cents that is <= number."""
    cents = _scaled_to_cents(number, "floor")
    assert cents is not None
    return cents


def cents_to_json(cents: int) -> int | float:
    """The JSON number for a price: an int when whole, else the float whose repr is exact.

    A price has at most 12 significant digits (999999999.99) and a double holds 15,
    so repr() of the nearest double is the shortest text that reads back as that
    double, which is the decimal itself: 19.99 is written as 19.99.
    """
    whole, fraction = divmod(cents, 100)
    if fraction == 0:
        return whole
    return float(Decimal(cents).scaleb(-2))


def _check_range(number: Decimal) -> None:
    if not number.is_finite():
        raise InvalidPrice("must be a finite number")
    if number < 0 or number > MAX_PRICE:
        raise InvalidPrice("must be between 0 and 1000000000")


def _scaled_to_cents(number: Decimal, rounding: Literal["exact", "ceiling", "floor"]) -> int | None:
    """number * 100 as an int, for a finite number already within the price range.

    "exact" gives None when number has more than 2 decimal places.
    """
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if not any(digits):
        return 0  # zero, with any exponent (0e999999999 is still 0)
    shift = exponent + 2
    if shift >= 0:
        # Within the range, coefficient * 10**shift <= 10**11: at most 12 digits in all.
        return _int_of(digits + (0,) * shift)
    # The digits split where the cents end: the whole cents before, the rest after. The
    # coefficient has no leading zeros and the number is at most 10**9, so the whole part
    # has at most 12 digits; the rest, however long (1.<4,400 zeros>), is only scanned
    # for a non-zero digit, never turned into an int (int() refuses over 4,300 digits).
    split = len(digits) + shift
    whole = _int_of(digits[:split]) if split > 0 else 0
    if not any(digits[max(split, 0) :]):
        return whole
    if rounding == "exact":
        return None
    assert sign == 0  # negative values were refused by the range check
    return whole + 1 if rounding == "ceiling" else whole


def _int_of(digits: tuple[int, ...]) -> int:
    value = 0
    for digit in digits:
        value = value * 10 + digit
    return value
