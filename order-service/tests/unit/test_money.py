"""Prices between cents and JSON numbers, exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from order_service.money import cents_of, cents_to_json


@pytest.mark.parametrize(
    ("cents", "number"),
    [(1999, 19.99), (10, 0.1), (100, 1), (0, 0), (99_999_999_999_999, 999_999_999_999.99)],
)
def test_cents_become_the_exact_json_number(cents: int, number: float) -> None:
    assert cents_to_json(cents) == number
    assert repr(cents_to_json(cents)) == repr(number)
    assert cents_of(cents_to_json(cents)) == cents


@pytest.mark.parametrize("price", [Decimal("19.99"), 19.99, 5, Decimal("1E+2")])
def test_prices_from_product_service_are_read_exactly(price: object) -> None:
    assert Decimal(cents_of(price)) == Decimal(str(price)) * 100


@pytest.mark.parametrize("price", [19.999, -1, True, "19.99", None, Decimal("0.001")])
def test_anything_but_a_price_is_refused(price: object) -> None:
    with pytest.raises(ValueError):
        cents_of(price)
