"""Bodies of /stock/reservations: ReservationCreate in, ReservationPublic out."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from product_service.schemas import JsonPrice, integral
from shop_common.models import StrictModel

MAX_QUANTITY = 1000
MAX_LINES = 50
_EXAMPLE_ORDER = "7b1f0e2d-3c4a-4b5c-8d6e-9f0a1b2c3d4e"
_EXAMPLE_PRODUCT = "5f0c3a1e-9d2b-4c7a-8e6f-1b2c3d4e5f6a"

Quantity = Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY), BeforeValidator(integral)]


class ReservationLineCreate(StrictModel):
    product_id: uuid.UUID
    quantity: Quantity


class ReservationCreate(StrictModel):
    """The order's lines: each product at most once."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [{"product_id": _EXAMPLE_PRODUCT, "quantity": 2}]}]
        }
    )

    items: list[ReservationLineCreate] = Field(min_length=1, max_length=MAX_LINES)


class ReservationLinePublic(BaseModel):
    """A reserved line with the catalog as it was when it was reserved."""

    product_id: uuid.UUID
    name: str
    sku: str | None
    price: JsonPrice
    currency: str
    quantity: int


RESERVATION_EXAMPLE: dict[str, Any] = {
    "order_id": _EXAMPLE_ORDER,
    "status": "held",
    "items": [
        {
            "product_id": _EXAMPLE_PRODUCT,
            "name": "Desk lamp",
            "sku": "LAMP-001",
            "price": 19.99,
            "currency": "USD",
            "quantity": 2,
        }
    ],
}


class ReservationPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [RESERVATION_EXAMPLE]})

    order_id: uuid.UUID
    status: str
    items: list[ReservationLinePublic]
