"""The sweeper: expires unpaid orders and gives up checkouts whose process died.

Driven by the database, not by timers in memory: it finds due rows on every pass, so an
expiry survives restarts, and with several replicas each row is taken by one of them
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, and the status-conditional update everywhere).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service import repository
from order_service.checkout import give_up
from order_service.config import Settings
from order_service.events import record_order_event
from order_service.models import Status
from order_service.service import items_of
from order_service.stock import StockClient
from shop_common.database import is_unavailable

logger = logging.getLogger(__name__)
BATCH = 100
PURGE_EVERY_SECONDS = 3600.0


class OrderSweeper:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        stock: StockClient,
        settings: Settings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.stock = stock
        self.settings = settings
        self._last_purge = 0.0

    async def run(self) -> None:
        """A pass every interval, the first one interval after the start (the process is
        serving by then)."""
        while True:
            await asyncio.sleep(self.settings.sweep_interval_seconds)
            try:
                await self.sweep()
            except Exception as exc:
                if is_unavailable(exc):
                    logger.warning("sweeper: database unavailable (%s); retrying", exc)
                else:
                    logger.exception("sweeper: pass failed; retrying")

    async def sweep(self, now: datetime | None = None) -> tuple[int, int]:
        """One pass: (orders expired, checkouts given up)."""
        now = now or datetime.now(UTC)
        expired = 0
        while (count := await self._expire_batch(now)) > 0:
            expired += count
        abandoned = await self._give_up_stale(
            now - timedelta(seconds=self.settings.abandoned_checkout_seconds)
        )
        if time.monotonic() - self._last_purge > PURGE_EVERY_SECONDS:
            await self._purge(now)
            self._last_purge = time.monotonic()
        if expired or abandoned:
            logger.info("sweeper: %d expired, %d checkouts given up", expired, abandoned)
        return expired, abandoned

    async def _expire_batch(self, now: datetime) -> int:
        async with self.sessionmaker() as session:
            due = await repository.lock_due_orders(
                session, status=Status.PENDING_PAYMENT, before=now, limit=BATCH
            )
            expired: list[uuid.UUID] = []
            for order_id in due:
                if await repository.update_order(
                    session,
                    order_id,
                    from_statuses=(Status.PENDING_PAYMENT,),
                    expected_version=None,
                    values={"status": Status.EXPIRED, "updated_at": now},
                ):
                    order = await repository.get_order(session, order_id)
                    assert order is not None
                    await record_order_event(session, order, "expired", items=items_of(order))
                    expired.append(order_id)
            await session.commit()
        for order_id in expired:
            # The events release the stock too; this makes it visible at once.
            await self.stock.release(order_id)
        return len(expired)

    async def _give_up_stale(self, started_before: datetime) -> int:
        async with self.sessionmaker() as session:
            stale = await repository.lock_due_orders(
                session,
                status=Status.RESERVING,
                before=started_before,
                limit=BATCH,
                by_creation=True,
            )
            await session.commit()
        given_up = 0
        for order_id in stale:
            async with self.sessionmaker() as session:
                if await give_up(session, self.stock, order_id=order_id, actor=None):
                    given_up += 1
        return given_up

    async def _purge(self, now: datetime) -> None:
        before = now - timedelta(seconds=self.settings.idempotency_retention_seconds)
        async with self.sessionmaker() as session:
            purged = await repository.purge_idempotency_keys(session, before=before)
            await session.commit()
        if purged:
            logger.info("sweeper: %d idempotency keys past retention purged", purged)
