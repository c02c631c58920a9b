"""Every query order-service runs."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from order_service.cursors import OrderFilter
from order_service.models import IdempotencyKey, PurchaseOrder, Status


async def add_checkout(session: AsyncSession, order: PurchaseOrder, key: IdempotencyKey) -> None:
    """The order (still reserving) and the key that claims it, in one flush: of two
    requests with one key, the second's insert conflicts on the key's primary key."""
    session.add(order)
    await session.flush()
    session.add(key)
    await session.flush()


async def get_idempotency_key(
    session: AsyncSession, user_id: uuid.UUID, key: str
) -> IdempotencyKey | None:
    return await session.get(IdempotencyKey, (user_id, key), populate_existing=True)


async def get_order(session: AsyncSession, order_id: uuid.UUID) -> PurchaseOrder | None:
    result = await session.execute(
        select(PurchaseOrder)
        .where(PurchaseOrder.id == order_id)
        .options(selectinload(PurchaseOrder.lines))
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def list_orders(
    session: AsyncSession, *, filters: OrderFilter, before_number: int | None, limit: int
) -> Sequence[PurchaseOrder]:
    """Newest first (by number), `limit + 1` rows so the caller knows if a page follows."""
    query = select(PurchaseOrder).options(selectinload(PurchaseOrder.lines))
    if filters.status is not None:
        query = query.where(PurchaseOrder.status == filters.status)
    else:
        query = query.where(PurchaseOrder.status.in_(Status.PUBLIC))
    if filters.user_id is not None:
        query = query.where(PurchaseOrder.user_id == filters.user_id)
    if before_number is not None:
        query = query.where(PurchaseOrder.number < before_number)
    result = await session.execute(query.order_by(PurchaseOrder.number.desc()).limit(limit + 1))
    return result.scalars().all()


async def update_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    from_statuses: Collection[str],
    expected_version: int | None,
    values: Mapping[str, Any],
) -> bool:
    """One conditional UPDATE that bumps the version; False when no row matched (another
    change came first), so of concurrent transitions exactly one applies."""
    condition = [PurchaseOrder.id == order_id, PurchaseOrder.status.in_(from_statuses)]
    if expected_version is not None:
        condition.append(PurchaseOrder.version == expected_version)
    result = await session.execute(
        update(PurchaseOrder)
        .where(*condition)
        .values(**values, version=PurchaseOrder.version + 1)
        .returning(PurchaseOrder.number)
        .execution_options(synchronize_session=False)
    )
    return result.first() is not None


async def lock_due_orders(
    session: AsyncSession, *, status: str, before: datetime, limit: int, by_creation: bool = False
) -> Sequence[uuid.UUID]:
    """Ids of orders in `status` whose deadline passed, locked for this transaction;
    rows another replica holds are skipped (PostgreSQL; SQLite has one writer anyway)."""
    column = PurchaseOrder.created_at if by_creation else PurchaseOrder.expires_at
    result = await session.execute(
        select(PurchaseOrder.id)
        .where(PurchaseOrder.status == status, column <= before)
        .order_by(column)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return result.scalars().all()


async def delete_idempotency_key(session: AsyncSession, user_id: uuid.UUID, key: str) -> None:
    await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )


async def delete_keys_of_order(session: AsyncSession, order_id: uuid.UUID) -> None:
    """Frees the key of a checkout given up without an answer: the client may retry it."""
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.order_id == order_id, IdempotencyKey.response_status.is_(None)
        )
    )


async def purge_idempotency_keys(session: AsyncSession, *, before: datetime) -> int:
    result = await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.created_at < before, IdempotencyKey.response_status.is_not(None))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
