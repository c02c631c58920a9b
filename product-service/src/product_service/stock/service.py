"""Reserving and releasing an order's stock: all or nothing, each at most once.

A reservation first inserts its row (the order id claims the order), then takes each
line's units with a conditional UPDATE in product id order (concurrent reservations
lock products in one order: no deadlock), stores the lines and records the event, in
one transaction. A release flips `held` to `released` with a conditional UPDATE and only
the transaction that flipped it returns the units. docs/decisions/stock-reservations.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from product_service.events import record_product_event
from product_service.exceptions import (
    InvalidReservation,
    ReservationConflict,
    ReservationNotFound,
    ReservationReleased,
    StockShort,
)
from product_service.models import HELD, RELEASED
from product_service.stock import repository
from product_service.stock.schemas import ReservationLineCreate
from shop_common.models import canonical_uuid

# Stock returned between a failed attempt and the read that explains it: try again.
_MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class ReservedLine:
    product_id: uuid.UUID
    name: str
    sku: str | None
    price_cents: int
    currency: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Reservation:
    order_id: uuid.UUID
    status: str
    lines: list[ReservedLine]
    created: bool  # False: the same reservation made before (answered 200)


def parse_order_id(text: str) -> uuid.UUID:
    """The order id in a path; anything but a UUID names no reservation (404)."""
    identifier = canonical_uuid(text)
    if identifier is None:
        raise ReservationNotFound("No reservation has this id.")
    return identifier


async def reserve_stock(
    session: AsyncSession, *, order_id: str, items: Sequence[ReservationLineCreate]
) -> Reservation:
    """Reserve every line or none; a repeat with the same items changes nothing."""
    identifier = parse_order_id(order_id)
    wanted = [(line.product_id, line.quantity) for line in items]
    _check_each_product_once(wanted)
    failed = 0
    for _ in range(_MAX_ATTEMPTS):
        now = datetime.now(UTC)
        if not await repository.claim_order(session, identifier, status=HELD, now=now):
            await session.rollback()
            existing = await _existing(session, identifier, wanted)
            if existing is not None:
                return existing
            continue  # its transaction rolled back meanwhile: claim again
        taken: dict[int, Any] = {}
        for index in sorted(range(len(wanted)), key=lambda i: wanted[i][0]):
            product_id, quantity = wanted[index]
            row = await repository.take_stock(session, product_id, quantity, now=now)
            if row is None:
                failed = index
                break
            taken[index] = row
        if len(taken) == len(wanted):
            lines = [
                ReservedLine(
                    product_id=product_id,
                    name=taken[index].name,
                    sku=taken[index].sku,
                    price_cents=taken[index].price_cents,
                    currency=taken[index].currency,
                    quantity=quantity,
                )
                for index, (product_id, quantity) in enumerate(wanted)
            ]
            await repository.add_lines(session, identifier, [asdict(line) for line in lines])
            await record_product_event(session, "stock_reserved", _event_data(identifier, wanted))
            await session.commit()
            return Reservation(identifier, HELD, lines, created=True)
        # The rollback undoes the claim and every decrement: nothing changed. Then a
        # read says why (it cannot change what was, or was not, reserved).
        await session.rollback()
        short = await _refusals(session, wanted)
        if short:
            raise _short(short)
        # The stock came back between the attempt and the read: try again.
    raise _short([failed])


async def release_stock(session: AsyncSession, *, order_id: uuid.UUID) -> bool:
    """Return a held reservation's units, once; True if this call released it.

    An order with no reservation gets a tombstone (released, no lines), so a reservation
    still on its way for it is refused (410). Does not commit: the caller commits (the
    DELETE route, or the event consumer with its inbox row).
    """
    for _ in range(_MAX_ATTEMPTS):
        now = datetime.now(UTC)
        if await repository.mark_released(session, order_id, now=now):
            returned = []
            lines = await repository.list_lines(session, order_id)
            for line in sorted(lines, key=lambda line: line.product_id):
                # A product deleted meanwhile has no stock to return to.
                if await repository.give_back_stock(
                    session, line.product_id, line.quantity, now=now
                ):
                    returned.append(line)
            returned.sort(key=lambda line: line.line_no)
            items = [(line.product_id, line.quantity) for line in returned]
            await record_product_event(session, "stock_released", _event_data(order_id, items))
            return True
        if await repository.claim_order(session, order_id, status=RELEASED, now=now):
            return False
        # The row exists: released already, or held by a reservation that committed
        # after the UPDATE above looked (PostgreSQL): then release it now.
        if await repository.get_status(session, order_id) == RELEASED:
            return False
    raise RuntimeError(f"the reservation of order {order_id} kept changing")


async def release_reservation(session: AsyncSession, *, order_id: str) -> None:
    """DELETE: release (or tombstone) and commit; the same answer however often."""
    await release_stock(session, order_id=parse_order_id(order_id))
    await session.commit()


def _check_each_product_once(wanted: list[tuple[uuid.UUID, int]]) -> None:
    seen: set[uuid.UUID] = set()
    errors = []
    for index, (product_id, _) in enumerate(wanted):
        if product_id in seen:
            errors.append(
                {"field": f"items.{index}.product_id", "message": "appears on another line"}
            )
        seen.add(product_id)
    if errors:
        raise InvalidReservation("Each product may appear on one line only.", errors=errors)


async def _existing(
    session: AsyncSession, order_id: uuid.UUID, wanted: list[tuple[uuid.UUID, int]]
) -> Reservation | None:
    """The reservation this order has already: 200 if the same items, else 409 or 410."""
    status = await repository.get_status(session, order_id)
    rows = await repository.list_lines(session, order_id) if status == HELD else []
    await session.commit()  # ends the read transaction
    if status is None:
        return None
    if status == RELEASED:
        raise ReservationReleased("The order was given up; its stock is released.")
    if {row.product_id: row.quantity for row in rows} != dict(wanted) or len(rows) != len(wanted):
        raise ReservationConflict("This order has a reservation with other items.")
    lines = [
        ReservedLine(
            product_id=row.product_id,
            name=row.name,
            sku=row.sku,
            price_cents=row.price_cents,
            currency=row.currency,
            quantity=row.quantity,
        )
        for row in rows
    ]
    return Reservation(order_id, HELD, lines, created=False)


async def _refusals(session: AsyncSession, wanted: list[tuple[uuid.UUID, int]]) -> list[int]:
    """After a rolled-back attempt: 422 for unknown products, else the short lines."""
    stock = await repository.stock_of(session, [product_id for product_id, _ in wanted])
    await session.commit()
    unknown = [
        {"field": f"items.{index}.product_id", "message": "no product has this id"}
        for index, (product_id, _) in enumerate(wanted)
        if product_id not in stock
    ]
    if unknown:
        raise InvalidReservation(
            "Some products do not exist; nothing was reserved.", errors=unknown
        )
    return [
        index for index, (product_id, quantity) in enumerate(wanted) if stock[product_id] < quantity
    ]


def _short(indexes: list[int]) -> StockShort:
    errors = [
        {"field": f"items.{index}.quantity", "message": "is more than the product's stock"}
        for index in indexes
    ]
    return StockShort(
        "Some lines ask for more than the product's stock; nothing was reserved.",
        errors=errors,
    )


def _event_data(order_id: uuid.UUID, items: list[tuple[uuid.UUID, int]]) -> dict[str, Any]:
    return {
        "order_id": str(order_id),
        "items": [
            {"product_id": str(product_id), "quantity": quantity} for product_id, quantity in items
        ],
    }
