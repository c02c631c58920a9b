"""What product-service does with order-service's events: release the stock of an order
that was cancelled, expired or aborted, in the consumer's transaction (inbox and effect
commit together, so a redelivered event changes nothing)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from product_service.config import SERVICE_NAME
from product_service.events import PRODUCTS_STREAM
from product_service.models import ORDERS_INBOX_TABLE, OUTBOX_TABLE
from product_service.stock.service import release_stock
from shop_common.events import (
    ConsumerSpec,
    DeadLetterSpec,
    Event,
    EventRuntime,
    PermanentFailure,
    StreamSpec,
)

if TYPE_CHECKING:
    from shop_common.tracing import Tracing

RELEASING_TYPES = frozenset({"order.cancelled", "order.expired", "order.aborted"})


async def on_order_event(session: AsyncSession, event: Event) -> None:
    """An order given up returns its stock (once); every other order event is only acked."""
    if event.type not in RELEASING_TYPES:
        return
    try:
        order_id = uuid.UUID(str(event.data["order_id"]))
    except (KeyError, ValueError) as exc:
        raise PermanentFailure(f"{event.type} without a valid order_id") from exc
    await release_stock(session, order_id=order_id)


@dataclass(frozen=True)
class EventWiring:
    """Streams and names of product-service's events (tests use a private set)."""

    products: StreamSpec = PRODUCTS_STREAM
    orders_stream: str = "ORDERS"  # declared by order-service
    orders_filter: str = "orders.>"
    durable: str = "product-service-orders"
    dead_letters: DeadLetterSpec = field(default_factory=DeadLetterSpec)


def event_runtime(
    *,
    nats_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    wiring: EventWiring,
    tracing: Tracing | None = None,
) -> EventRuntime:
    """The outbox relay to PRODUCTS and the consumer of ORDERS (which waits for the
    stream to exist); NATS being away never stops the service."""
    return EventRuntime(
        nats_url=nats_url,
        source=SERVICE_NAME,
        engine=engine,
        sessionmaker=sessionmaker,
        streams=[wiring.products],
        consumers=[
            ConsumerSpec(
                durable=wiring.durable,
                stream=wiring.orders_stream,
                filter_subject=wiring.orders_filter,
                handler=on_order_event,
                inbox_table=ORDERS_INBOX_TABLE,
            )
        ],
        dead_letters=wiring.dead_letters,
        outbox_table=OUTBOX_TABLE,
        tracing=tracing,
    )
