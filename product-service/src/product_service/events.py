"""product-service's events: the PRODUCTS stream, and recording each change in the outbox.

Subjects and types: products.created / product.created, products.updated /
product.updated (data: the product as the API shows it), products.deleted /
product.deleted (`{"id"}`), products.stock_reserved / product.stock_reserved and
products.stock_released / product.stock_released (`{"order_id", "items"}`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from product_service.config import SERVICE_NAME
from product_service.models import OUTBOX_TABLE
from shop_common.events import StreamSpec, record_event
from shop_common.events.outbox import event_parameters

PRODUCTS_STREAM = StreamSpec(name="PRODUCTS", subjects=("products.>",))


async def record_product_event(session: AsyncSession, kind: str, data: Mapping[str, Any]) -> None:
    """One outbox row in `session`'s transaction: published once the change commits."""
    await record_event(
        session,
        source=SERVICE_NAME,
        subject=f"products.{kind}",
        type=f"product.{kind}",
        data=data,
        table=OUTBOX_TABLE,
    )


def product_event_parameters(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The same event's values for a statement that writes the change and the event at
    once (repository.insert_product_with_event)."""
    return event_parameters(
        source=SERVICE_NAME, subject=f"products.{kind}", type=f"product.{kind}", data=data
    )
