"""A product as the API shows it, straight from its row to JSON bytes.

One function for every response and event that carries a product (GET by id, list
pages, POST/PUT/PATCH bodies, the product.created/updated events' data): a dict of the
row's values that orjson writes in one call, with no pydantic model per row. `ProductPublic`
(schemas.py) stays the documented shape; a test holds the two byte for byte equal.
docs/decisions/product-service-list-and-write-speed.md has the measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from product_service.models import Product

# The product table's columns, in the order of `SELECT <columns>` and `select(table)`:
# rows are read by position (an asyncpg Record and a SQLAlchemy Row both allow it).
COLUMNS: tuple[str, ...] = tuple(Product.__table__.columns.keys())
_AT = {name: index for index, name in enumerate(COLUMNS)}
ID = _AT["id"]
VERSION = _AT["version"]
_NAME, _DESCRIPTION, _PRICE = _AT["name"], _AT["description"], _AT["price_cents"]
_CURRENCY, _STOCK, _SKU, _OWNER = _AT["currency"], _AT["stock"], _AT["sku"], _AT["owner_id"]
_CREATED, _UPDATED = _AT["created_at"], _AT["updated_at"]
_OPTIONS = orjson.OPT_UTC_Z


def timestamp(moment: datetime | str) -> datetime | str:
    """What orjson should write for a UTC timestamp: always six digits of microseconds.

    orjson writes `…T09:30:00.123456Z` itself but drops a zero fraction (`…T09:30:00Z`);
    that one case in a million is formatted here, as RFC 3339 with microseconds. Text is
    a timestamp PostgreSQL already wrote that way (a list page, repository.list_statement).
    """
    if isinstance(moment, str) or moment.microsecond:
        return moment
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def price(cents: int) -> int | float:
    """The JSON number for a price in cents: an int when whole, else cents / 100.

    Python's int division is correctly rounded, so cents / 100 is the double nearest the
    exact decimal, whose shortest repr (what orjson writes) is that decimal: 1999 -> 19.99.
    """
    whole, fraction = divmod(cents, 100)
    return cents / 100 if fraction else whole


def product_document(row: Sequence[Any]) -> dict[str, Any]:
    """The API's product object from the table's columns (by position, see COLUMNS)."""
    return {
        "id": str(row[ID]),
        "name": row[_NAME],
        "description": row[_DESCRIPTION],
        "price": price(row[_PRICE]),
        "currency": row[_CURRENCY],
        "stock": row[_STOCK],
        "sku": row[_SKU],
        "owner_id": str(row[_OWNER]),
        "created_at": timestamp(row[_CREATED]),
        "updated_at": timestamp(row[_UPDATED]),
        "version": row[VERSION],
    }


def product_row(product: Product) -> tuple[Any, ...]:
    """An ORM product's columns in COLUMNS order (the write paths that still load one)."""
    return tuple(getattr(product, name) for name in COLUMNS)


def product_json(row: Sequence[Any]) -> bytes:
    return orjson.dumps(product_document(row), option=_OPTIONS)


def page_json(rows: Sequence[Sequence[Any]], next_cursor: str | None) -> bytes:
    """A list page: every row serialised once, in the one orjson call of the page."""
    items = [product_document(row) for row in rows]
    return orjson.dumps({"items": items, "next_cursor": next_cursor}, option=_OPTIONS)
