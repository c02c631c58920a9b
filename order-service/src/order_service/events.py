"""The events order-service publishes: every change of an order's status, through its outbox.

Stream ORDERS, subjects `orders.<what>`, types `order.<what>`:
placed, paid, shipped, cancelled, expired (public statuses) and aborted (a checkout given up
after its stock may have been reserved: product-service releases the reservation).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from order_service.config import SERVICE_NAME
from order_service.metrics import ORDER_STATUS_CHANGES
from order_service.models import OUTBOX_TABLE, PurchaseOrder
from shop_common.events import StreamSpec, record_event

ORDERS_STREAM = StreamSpec(name="ORDERS", subjects=("orders.>",))
KINDS = ("placed", "paid", "shipped", "cancelled", "expired", "aborted")


def event_data(order: PurchaseOrder, **extra: Any) -> dict[str, Any]:
    """What every order event carries: enough for a consumer to act without calling back."""
    data: dict[str, Any] = {
        "order_id": str(order.id),
        "number": order.number,
        "user_id": str(order.user_id),
        "status": order.status,
        "version": order.version,
    }
    if order.currency is not None:
        data["currency"] = order.currency
        data["total"] = Decimal(order.total_cents).scaleb(-2)
    return {**data, **extra}


async def record_order_event(
    session: AsyncSession,
    order: PurchaseOrder,
    kind: str,
    *,
    items: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> None:
    """Adds the event to the outbox in the caller's transaction (published after commit)."""
    if kind not in KINDS:
        raise ValueError(f"unknown order event {kind!r}")
    data = event_data(order, **extra)
    if items is not None:
        data["items"] = items
    await record_event(
        session,
        source=SERVICE_NAME,
        subject=f"orders.{kind}",
        type=f"order.{kind}",
        data=data,
        table=OUTBOX_TABLE,
    )
    # Counted when recorded; a rollback after this overcounts by one, never undercounts.
    ORDER_STATUS_CHANGES.labels(order.status).inc()
