"""The outbox relay: publishes committed events in order, then marks them published.

A pass locks the oldest unpublished rows, publishes each with `Nats-Msg-Id` = event id
and waits for JetStream's ack, then marks the published ones in the same transaction. A
crash between a publish and the mark leaves the row unpublished; publishing it again is
dropped by JetStream as a duplicate (within the stream's duplicate window), and any
later repeat by the consumers' inboxes. On PostgreSQL one replica relays at a time (a
transaction-scoped advisory lock; the rows are locked FOR UPDATE SKIP LOCKED besides):
two relays taking alternate batches would publish out of order. SQLite has one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from nats.js import JetStreamContext
from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shop_common.database import UtcDateTime
from shop_common.events import metrics
from shop_common.events.envelope import MSG_ID_HEADER, TRACEPARENT_HEADER, TYPE_HEADER
from shop_common.events.outbox import outbox_table_named, register_waker
from shop_common.events.tables import DEFAULT_OUTBOX_TABLE

if TYPE_CHECKING:
    from shop_common.tracing import Tracing

logger = logging.getLogger(__name__)
BUSY_RETRY_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 5.0
PURGE_EVERY_SECONDS = 3600.0
PURGE_BATCH = 10_000
_SQLITE_LOCKS: dict[str, asyncio.Lock] = {}


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        source: str,
        table: str = DEFAULT_OUTBOX_TABLE,
        batch_size: int = 100,
        poll_seconds: float = 1.0,
        keep_published: timedelta = timedelta(days=7),
        publish_timeout: float = 5.0,
        tracing: Tracing | None = None,
    ) -> None:
        self.engine = engine
        self.source = source
        self.table = outbox_table_named(table)
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.publish_timeout = publish_timeout
        self.tracing = tracing
        self.keep_published = keep_published
        self._purge_due = 0.0
        self._wake = asyncio.Event()
        self._lag_due = 0.0
        # Several relays of one table in one process (tests) take turns on SQLite.
        self._local_lock = _SQLITE_LOCKS.setdefault(f"{engine.url}|{table}", asyncio.Lock())
        self._lock_key = zlib.crc32(f"shop_common.events.relay:{table}".encode())
        register_waker(self)

    def wake(self) -> None:
        """A commit recorded events: publish now rather than at the next poll."""
        self._wake.set()

    async def run(self, js: JetStreamContext) -> None:
        """Publish until cancelled: woken after commits, polling as a fallback (other
        replicas' commits), backing off while NATS or the database fail. No row is lost:
        a failed pass leaves its rows for the next one."""
        backoff = 0.0
        while True:
            self._wake.clear()
            try:
                busy = await self.publish_pending(js) is None
            except Exception as exc:  # NATS or the database away: the rows wait
                metrics.PUBLISH_FAILURES.labels(self.source).inc()
                backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
                logger.warning(
                    "outbox relay: %s (%s); retrying in %.1f s", type(exc).__name__, exc, backoff
                )
                await self._update_lag()
                await asyncio.sleep(backoff)
                continue
            backoff = 0.0
            now = asyncio.get_running_loop().time()
            if not busy and now >= self._lag_due:
                await self._update_lag()  # at most once per poll, not once per commit
            if not busy and now >= self._purge_due:
                self._purge_due = now + PURGE_EVERY_SECONDS
                await self._purge_quietly()
            timeout = BUSY_RETRY_SECONDS if busy else self.poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def publish_pending(self, js: JetStreamContext) -> int | None:
        """Publish every unpublished row, batch by batch; None when another replica is at it."""
        total = 0
        while True:
            count = await self.publish_batch(js)
            if count is None:
                return None if total == 0 else total
            total += count
            if count < self.batch_size:
                return total

    async def publish_batch(self, js: JetStreamContext) -> int | None:
        """One batch in one transaction: lock, publish in order, mark what was published."""
        if self.engine.dialect.name == "sqlite":
            async with self._local_lock:
                return await self._publish_batch(js)
        return await self._publish_batch(js)

    async def _publish_batch(self, js: JetStreamContext) -> int | None:
        failure: BaseException | None = None
        published: list[int] = []
        async with self.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                locked = await connection.scalar(
                    select(func.pg_try_advisory_xact_lock(self._lock_key))
                )
                if not locked:
                    await connection.rollback()
                    return None
            rows = (await connection.execute(self._pending_rows())).all()
            try:
                for row in rows:
                    await self._publish(js, row)
                    published.append(row.position)
            except Exception as exc:  # mark what went out; the rest waits for the next pass
                failure = exc
            if published:
                await self._mark_published(connection, published)
            await connection.commit()
        metrics.PUBLISHED.labels(self.source).inc(len(published))
        if failure is not None:
            raise failure
        return len(published)

    def _pending_rows(self) -> Any:
        table = self.table
        return (
            select(table)
            .where(table.c.published_at.is_(None))
            .order_by(table.c.position)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )

    async def _publish(self, js: JetStreamContext, row: Row[Any]) -> None:
        body = orjson.dumps(
            {
                "id": row.id,
                "type": row.type,
                "source": row.source,
                "subject": row.subject,
                "occurred_at": row.occurred_at,
                "data": orjson.Fragment(row.data),
                "traceparent": row.traceparent,
            },
            option=orjson.OPT_UTC_Z,
        )
        headers = {MSG_ID_HEADER: row.id, TYPE_HEADER: row.type}
        if self.tracing is None:
            if row.traceparent:
                headers[TRACEPARENT_HEADER] = row.traceparent
            await js.publish(row.subject, body, timeout=self.publish_timeout, headers=headers)
            return
        from opentelemetry.trace import SpanKind

        name = f"publish {row.subject}"
        with self.tracing.message_span(name, SpanKind.PRODUCER, row.traceparent) as (span, own):
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", row.subject)
            span.set_attribute("messaging.message.id", row.id)
            if own:
                headers[TRACEPARENT_HEADER] = own
            await js.publish(row.subject, body, timeout=self.publish_timeout, headers=headers)

    async def _mark_published(self, connection: AsyncConnection, positions: list[int]) -> None:
        table = self.table
        await connection.execute(
            update(table)
            .where(table.c.position.in_(positions))
            .values(published_at=datetime.now(UTC))
        )

    async def purge_published(self) -> int:
        """Delete rows published longer ago than `keep_published`, in small batches (a long
        delete would hold locks); unpublished rows are never deleted. Returns the count."""
        table = self.table
        cutoff = datetime.now(UTC) - self.keep_published
        total = 0
        while True:
            oldest = (
                select(table.c.position)
                .where(table.c.published_at.is_not(None), table.c.published_at < cutoff)
                .order_by(table.c.position)
                .limit(PURGE_BATCH)
            )
            async with self.engine.begin() as connection:
                result = await connection.execute(
                    delete(table).where(table.c.position.in_(oldest.scalar_subquery()))
                )
            deleted = int(result.rowcount or 0)
            total += deleted
            if deleted < PURGE_BATCH:
                return total

    async def _purge_quietly(self) -> None:
        try:
            purged = await self.purge_published()
        except Exception as exc:  # the database is away: next hour
            logger.warning("outbox purge failed: %s", exc)
            return
        if purged:
            logger.info(
                "outbox: %d published rows older than %s deleted", purged, self.keep_published
            )

    async def lag(self) -> tuple[int, float]:
        """Unpublished rows, and the age in seconds of the oldest of them."""
        table = self.table
        async with self.engine.connect() as connection:
            count, oldest = (
                await connection.execute(
                    select(func.count(), func.min(table.c.occurred_at, type_=UtcDateTime())).where(
                        table.c.published_at.is_(None)
                    )
                )
            ).one()
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        return int(count), max(age, 0.0)

    async def _update_lag(self) -> None:
        self._lag_due = asyncio.get_running_loop().time() + self.poll_seconds
        try:
            rows, seconds = await self.lag()
        except Exception as exc:  # the database is away: keep the last figures
            logger.debug("outbox lag not measured: %s", exc)
            return
        metrics.OUTBOX_LAG_ROWS.labels(self.source).set(rows)
        metrics.OUTBOX_LAG_SECONDS.labels(self.source).set(seconds)
