"""documents.py writes a product exactly as the documented ProductPublic model would."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from product_service.documents import COLUMNS, page_json, price, product_json
from product_service.prices import MAX_PRICE_CENTS, cents_to_json
from product_service.schemas import ProductPage, ProductPublic


def _row(**fields: Any) -> tuple[Any, ...]:
    moment = datetime(2026, 12, 4, 9, 30, 0, 123456, tzinfo=UTC)
    values = {
        "id": uuid.uuid4(),
        "name": "Lamp",
        "name_lower": "lamp",
        "description": "",
        "description_lower": "",
        "price_cents": 1999,
        "currency": "USD",
        "stock": 5,
        "sku": "LAMP-1",
        "owner_id": uuid.uuid4(),
        "created_at": moment,
        "updated_at": moment + timedelta(seconds=1),
        "version": 1,
        **fields,
    }
    return tuple(values[name] for name in COLUMNS)


def _model(row: tuple[Any, ...]) -> ProductPublic:
    return ProductPublic.of_row(dict(zip(COLUMNS, row, strict=True)))


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="plain"),
        pytest.param({"name": 'Lampe à poser ☃ "x" \\ \t', "sku": None}, id="unicode-no-sku"),
        pytest.param({"price_cents": MAX_PRICE_CENTS - 1, "stock": 2147483647}, id="largest"),
        pytest.param({"price_cents": 0, "currency": "JPY"}, id="zero"),
        pytest.param({"price_cents": 10}, id="ten-cents"),
        pytest.param(
            {"created_at": datetime(2026, 1, 1, tzinfo=UTC)}, id="timestamp-without-microseconds"
        ),
        pytest.param(
            {"updated_at": datetime(2026, 1, 1, 12, 0, 0, 1, tzinfo=UTC)}, id="one-microsecond"
        ),
    ],
)
def test_a_product_is_written_byte_for_byte_as_the_model_writes_it(fields: dict[str, Any]) -> None:
    row = _row(**fields)
    assert product_json(row) == _model(row).model_dump_json().encode()


def test_a_page_is_written_byte_for_byte_as_the_page_model_writes_it() -> None:
    rows = [_row(price_cents=n * 37) for n in range(30)]
    for cursor in (None, "abc"):
        model = ProductPage(items=[_model(row) for row in rows], next_cursor=cursor)
        assert page_json(rows, cursor) == model.model_dump_json().encode()


def test_every_price_is_the_same_number_as_the_exact_decimal_conversion() -> None:
    generator = random.Random(15)
    samples = [*range(20_000), MAX_PRICE_CENTS, MAX_PRICE_CENTS - 1]
    samples += [generator.randrange(MAX_PRICE_CENTS + 1) for _ in range(50_000)]
    for cents in samples:
        assert repr(price(cents)) == repr(cents_to_json(cents)), cents
