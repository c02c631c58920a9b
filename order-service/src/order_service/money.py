"""Prices as integer cents inside, exact JSON numbers outside (as product-service does)."""

from __future__ import annotations

from decimal import Decimal


def cents_to_json(cents: int) -> int | float:
    """An int when whole, else the float whose repr is the exact decimal.

    Totals stay below 10**13 cents (50 lines x 1,000 x 10**9): 15 significant digits,
    which a double holds, so repr() of the nearest double reads back as the decimal.
    """
    whole, fraction = divmod(cents, 100)
    if fraction == 0:
        return whole
    return float(Decimal(cents).scaleb(-2))


def cents_of(price: object) -> int:
    """The cents of a price product-service sent (a JSON number read exactly, or a float)."""
    if isinstance(price, bool) or not isinstance(price, int | float | Decimal):
        raise ValueError(f"not a price: {price!r}")
    exact = Decimal(repr(price)) if isinstance(price, float) else Decimal(price)
    cents = exact.scaleb(2)
    if cents != cents.to_integral_value() or cents < 0:
        raise ValueError(f"not a price: {price!r}")
    return int(cents)
