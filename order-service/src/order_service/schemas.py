"""Request and response bodies: OrderCreate, PaymentCreate, ShipmentCreate, OrderPublic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from order_service.models import OrderLine, PurchaseOrder
from order_service.money import cents_to_json
from shop_common.models import PlainText, StrictModel

MAX_LINES = 50
MAX_QUANTITY = 1000
PublicStatus = Literal["pending_payment", "paid", "shipped", "cancelled", "expired"]


def _integral(value: object) -> object:
    """A JSON number without a fraction is an integer however it is written (5.0, 5e0)."""
    if isinstance(value, Decimal) and value.is_finite() and value.adjusted() < 18:
        if value == value.to_integral_value():
            return int(value)
    return value


def _valid_unicode(value: str) -> str:
    # A lone surrogate (from a \ud800 escape) is not text any database takes: 422, not 500.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Note = Annotated[PlainText, AfterValidator(_valid_unicode), Field(max_length=500)]
PaymentReference = Annotated[
    PlainText, AfterValidator(_valid_unicode), Field(min_length=1, max_length=200)
]
ShipmentText = Annotated[PlainText, AfterValidator(_valid_unicode), Field(max_length=100)]
Quantity = Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY), BeforeValidator(_integral)]


class OrderLineCreate(StrictModel):
    product_id: uuid.UUID
    quantity: Quantity


class OrderCreate(StrictModel):
    """What a buyer orders; prices, names and currency come from the catalog."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"product_id": "5f0c3a1e-9d2b-4c7a-8e6f-1b2c3d4e5f6a", "quantity": 2}
                    ],
                    "note": "Please ring twice.",
                }
            ]
        }
    )

    items: list[OrderLineCreate] = Field(min_length=1, max_length=MAX_LINES)
    note: Note | None = None


class PaymentCreate(StrictModel):
    """A payment taken outside the system (bank transfer, cash on delivery, ...)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"reference": "TRX-2026-000123"}]})

    reference: PaymentReference


class ShipmentCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"carrier": "DHL", "tracking_number": "JD0123456789"}]}
    )

    carrier: ShipmentText | None = None
    tracking_number: ShipmentText | None = None


def rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


_PRICE = {"type": "number", "examples": [19.99]}
_TIME = {"type": "string", "format": "date-time"}
_EXAMPLE_ORDER: dict[str, Any] = {
    "id": "8a1f5c2e-3b4d-4e6f-9a7b-0c1d2e3f4a5b",
    "number": 1042,
    "user_id": "0d9c8b7a-6f5e-4d3c-9b2a-1f0e9d8c7b6a",
    "status": "pending_payment",
    "items": [
        {
            "product_id": "5f0c3a1e-9d2b-4c7a-8e6f-1b2c3d4e5f6a",
            "name": "Desk lamp",
            "sku": "LAMP-001",
            "unit_price": 19.99,
            "quantity": 2,
            "line_total": 39.98,
        }
    ],
    "currency": "USD",
    "total": 39.98,
    "note": None,
    "payment_reference": None,
    "created_at": "2026-12-04T09:30:00.000000Z",
    "updated_at": "2026-12-04T09:30:00.000000Z",
    "expires_at": "2026-12-04T10:00:00.000000Z",
    "paid_at": None,
    "shipped_at": None,
    "cancelled_at": None,
    "version": 1,
}


class OrderItemPublic(BaseModel):
    product_id: uuid.UUID
    name: str
    sku: str | None
    unit_price: Annotated[float, Field(json_schema_extra=_PRICE)]
    quantity: int
    line_total: Annotated[float, Field(json_schema_extra=_PRICE)]


class OrderPublic(BaseModel):
    """The documented shape; bodies are built by order_document (one dict, one dump)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_ORDER]})

    id: uuid.UUID
    number: int
    user_id: uuid.UUID
    status: PublicStatus
    items: list[OrderItemPublic]
    currency: str
    total: Annotated[float, Field(json_schema_extra=_PRICE)]
    note: str | None
    payment_reference: str | None
    created_at: Annotated[datetime, Field(json_schema_extra=_TIME)]
    updated_at: Annotated[datetime, Field(json_schema_extra=_TIME)]
    expires_at: Annotated[datetime | None, Field(json_schema_extra=_TIME)]
    paid_at: Annotated[datetime | None, Field(json_schema_extra=_TIME)]
    shipped_at: Annotated[datetime | None, Field(json_schema_extra=_TIME)]
    cancelled_at: Annotated[datetime | None, Field(json_schema_extra=_TIME)]
    version: int


class OrderPage(BaseModel):
    items: list[OrderPublic]
    next_cursor: str | None


def line_document(line: OrderLine) -> dict[str, Any]:
    return {
        "product_id": str(line.product_id),
        "name": line.name,
        "sku": line.sku,
        "unit_price": cents_to_json(line.unit_price_cents),
        "quantity": line.quantity,
        "line_total": cents_to_json(line.line_total_cents),
    }


def order_document(order: PurchaseOrder) -> dict[str, Any]:
    """The order as the API shows it (a plain dict, serialised once with orjson)."""
    return {
        "id": str(order.id),
        "number": order.number,
        "user_id": str(order.user_id),
        "status": order.status,
        "items": [line_document(line) for line in order.lines],
        "currency": order.currency,
        "total": cents_to_json(order.total_cents),
        "note": order.note,
        "payment_reference": order.payment_reference,
        "created_at": rfc3339(order.created_at),
        "updated_at": rfc3339(order.updated_at),
        "expires_at": rfc3339(order.expires_at),
        "paid_at": rfc3339(order.paid_at),
        "shipped_at": rfc3339(order.shipped_at),
        "cancelled_at": rfc3339(order.cancelled_at),
        "version": order.version,
    }
