"""Use cases on placed orders: who sees which, transitions, versions. Commits explicitly."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from order_service import repository
from order_service.cursors import OrderFilter, encode_cursor
from order_service.events import record_order_event
from order_service.exceptions import OrderNotFound, PreconditionFailed, TransitionNotAllowed
from order_service.models import PurchaseOrder, Status
from order_service.stock import StockClient
from shop_common.credential import Caller
from shop_common.etags import Condition, entity_tag
from shop_common.models import canonical_uuid

_MAX_ATTEMPTS = 5
_NOT_FOUND = "No order has this id."


@dataclass(frozen=True, slots=True)
class Actor:
    """A signed-in caller, as the gateway vouched for it."""

    user_id: uuid.UUID
    is_admin: bool

    def as_caller(self) -> Caller:
        return Caller(user_id=str(self.user_id), role="ADMIN" if self.is_admin else "USER")


@dataclass(frozen=True, slots=True)
class ListRequest:
    filters: OrderFilter
    before_number: int | None
    limit: int


@dataclass(frozen=True, slots=True)
class Page:
    items: list[PurchaseOrder]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Transition:
    """An action: the status it leads to, the statuses it may start from, per role."""

    target: str
    event: str
    from_for_user: frozenset[str]
    from_for_admin: frozenset[str]


CANCEL = Transition(
    Status.CANCELLED,
    "cancelled",
    frozenset({Status.PENDING_PAYMENT}),
    frozenset({Status.PENDING_PAYMENT, Status.PAID}),
)
PAY = Transition(Status.PAID, "paid", frozenset(), frozenset({Status.PENDING_PAYMENT}))
SHIP = Transition(Status.SHIPPED, "shipped", frozenset(), frozenset({Status.PAID}))
# Statuses whose stock goes back to the catalog.
RELEASING = frozenset({Status.CANCELLED, Status.EXPIRED})


def etag_of(order: PurchaseOrder) -> str:
    return entity_tag(order.id, order.version)


def parse_order_id(text: str) -> uuid.UUID:
    """The id in a path; anything but a UUID names no order (404, as the contract says)."""
    identifier = canonical_uuid(text)
    if identifier is None:
        raise OrderNotFound(_NOT_FOUND)
    return identifier


def items_of(order: PurchaseOrder) -> list[dict[str, Any]]:
    return [{"product_id": str(line.product_id), "quantity": line.quantity} for line in order.lines]


async def get_order(session: AsyncSession, *, order_id: str, actor: Actor) -> PurchaseOrder:
    """The order if the actor may see it: another buyer's order is not disclosed (404)."""
    order = await repository.get_order(session, parse_order_id(order_id))
    await session.commit()  # end the read: a write may follow on this session
    if (
        order is None
        or order.status not in Status.PUBLIC
        or not (actor.is_admin or order.user_id == actor.user_id)
    ):
        raise OrderNotFound(_NOT_FOUND)
    return order


async def list_orders(session: AsyncSession, *, request: ListRequest) -> Page:
    rows = list(
        await repository.list_orders(
            session,
            filters=request.filters,
            before_number=request.before_number,
            limit=request.limit,
        )
    )
    await session.commit()
    items = rows[: request.limit]
    next_cursor = None
    if len(rows) > request.limit:
        next_cursor = encode_cursor(request.filters, items[-1].number)
    return Page(items=items, next_cursor=next_cursor)


async def change_status(
    session: AsyncSession,
    stock: StockClient,
    *,
    order_id: str,
    actor: Actor,
    transition: Transition,
    if_match: Condition | None,
    values: dict[str, Any] | None = None,
) -> PurchaseOrder:
    """Apply `transition` once: a repeat of one already applied is answered with the
    order as it is (200, nothing changes); one not allowed from the status is 409."""
    allowed: Collection[str] = (
        transition.from_for_admin if actor.is_admin else transition.from_for_user
    )
    for _ in range(_MAX_ATTEMPTS):
        order = await get_order(session, order_id=order_id, actor=actor)
        if if_match is not None and not if_match.matches_strongly(etag_of(order)):
            raise PreconditionFailed("If-Match does not match the order's current ETag.")
        if order.status == transition.target:
            return order
        if order.status not in allowed:
            raise TransitionNotAllowed(
                f"An order that is {order.status} cannot become {transition.target}."
            )
        now = datetime.now(UTC)
        changes = {**(values or {}), "status": transition.target, "updated_at": now}
        changes[_TIME_FIELD[transition.target]] = now
        if await repository.update_order(
            session,
            order.id,
            from_statuses=(order.status,),
            expected_version=order.version,
            values=changes,
        ):
            changed = await repository.get_order(session, order.id)
            assert changed is not None
            await record_order_event(session, changed, transition.event, items=items_of(changed))
            await session.commit()
            if changed.status in RELEASING:
                # The event releases the stock too; this makes it visible at once.
                await stock.release(changed.id, caller=actor.as_caller())
            return changed
        await session.rollback()  # another change came first: decide again
    raise PreconditionFailed("The order kept changing; read it again and retry.")


_TIME_FIELD = {
    Status.CANCELLED: "cancelled_at",
    Status.PAID: "paid_at",
    Status.SHIPPED: "shipped_at",
}
