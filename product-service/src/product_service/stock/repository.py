"""Every query of stock reservations: each a single statement, the same on SQLite and
PostgreSQL, whose WHERE clause decides (never a read in Python followed by a write)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, case, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from product_service.models import (
    HELD,
    RELEASED,
    Product,
    StockReservation,
    StockReservationLine,
)
from product_service.schemas import MAX_STOCK

_PRODUCT = cast(Table, Product.__table__)
_RESERVATION = cast(Table, StockReservation.__table__)
_LINE = cast(Table, StockReservationLine.__table__)


async def claim_order(
    session: AsyncSession, order_id: uuid.UUID, *, status: str, now: datetime
) -> bool:
    """Insert the reservation row; False when the order id has one already.

    On PostgreSQL a concurrent transaction that inserted the same id uncommitted makes
    this wait for it: its commit makes this a conflict, its rollback lets this insert.
    """
    connection = await session.connection()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    values: dict[str, Any] = {"order_id": order_id, "status": status, "created_at": now}
    if status == RELEASED:
        values["released_at"] = now
    statement = (
        dialect.insert(_RESERVATION)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["order_id"])
    )
    result: Any = await session.execute(statement)
    return bool(result.rowcount == 1)


async def take_stock(
    session: AsyncSession, product_id: uuid.UUID, quantity: int, *, now: datetime
) -> Row[Any] | None:
    """Take `quantity` units if the product has them: its catalog columns, else None
    (no such product, or too little stock; the row lock serialises concurrent takers)."""
    statement = (
        update(_PRODUCT)
        .where(_PRODUCT.c.id == product_id, _PRODUCT.c.stock >= quantity)
        .values(
            stock=_PRODUCT.c.stock - quantity,
            version=_PRODUCT.c.version + 1,
            updated_at=now,
        )
        .returning(_PRODUCT.c.name, _PRODUCT.c.sku, _PRODUCT.c.price_cents, _PRODUCT.c.currency)
    )
    return (await session.execute(statement)).first()


async def give_back_stock(
    session: AsyncSession, product_id: uuid.UUID, quantity: int, *, now: datetime
) -> bool:
    """Return units to a product, capped at the largest stock; False if it was deleted."""
    statement = (
        update(_PRODUCT)
        .where(_PRODUCT.c.id == product_id)
        .values(
            stock=case(
                (_PRODUCT.c.stock > MAX_STOCK - quantity, MAX_STOCK),
                else_=_PRODUCT.c.stock + quantity,
            ),
            version=_PRODUCT.c.version + 1,
            updated_at=now,
        )
        .returning(_PRODUCT.c.id)
    )
    return (await session.execute(statement)).first() is not None


async def add_lines(
    session: AsyncSession, order_id: uuid.UUID, lines: Sequence[Mapping[str, Any]]
) -> None:
    await session.execute(
        insert(_LINE),
        [{"order_id": order_id, "line_no": n, **line} for n, line in enumerate(lines)],
    )


async def mark_released(session: AsyncSession, order_id: uuid.UUID, *, now: datetime) -> bool:
    """held → released; True only for the one transaction that changed it."""
    statement = (
        update(_RESERVATION)
        .where(_RESERVATION.c.order_id == order_id, _RESERVATION.c.status == HELD)
        .values(status=RELEASED, released_at=now)
        .returning(_RESERVATION.c.order_id)
    )
    return (await session.execute(statement)).first() is not None


async def get_status(session: AsyncSession, order_id: uuid.UUID) -> str | None:
    statement = select(_RESERVATION.c.status).where(_RESERVATION.c.order_id == order_id)
    status: str | None = (await session.execute(statement)).scalar_one_or_none()
    return status


async def list_lines(session: AsyncSession, order_id: uuid.UUID) -> Sequence[Row[Any]]:
    statement = select(_LINE).where(_LINE.c.order_id == order_id).order_by(_LINE.c.line_no)
    return (await session.execute(statement)).all()


async def stock_of(session: AsyncSession, product_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The current stock of each product that exists."""
    statement = select(_PRODUCT.c.id, _PRODUCT.c.stock).where(_PRODUCT.c.id.in_(list(product_ids)))
    return {row.id: row.stock for row in await session.execute(statement)}
