"""Durable pull consumers that apply each event once: inbox row and effect in one commit.

For each delivery the consumer opens a session, inserts the event id into its inbox
(a repeat inserts nothing and is acknowledged without running the handler), runs the
handler in that transaction, commits, and only then acks. A crash before the commit
undoes both; a crash after it and before the ack redelivers an event the inbox already
holds. A handler that fails is retried after `backoff[n]`; after `max_deliver`
deliveries, or at once when it raises PermanentFailure, the event goes to the dead
letters (the dead-letter stream, see DeadLetterSpec) and is terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError
from sqlalchemy import MetaData, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.database import is_unavailable
from shop_common.events import metrics
from shop_common.events.envelope import (
    MSG_ID_HEADER,
    TRACEPARENT_HEADER,
    Event,
    MalformedEvent,
)
from shop_common.events.streams import DeadLetterSpec
from shop_common.events.tables import inbox_table

if TYPE_CHECKING:
    from shop_common.tracing import Tracing

logger = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Event], Awaitable[None]]
DEAD_LETTER_HEADER_PREFIX = "Shop-Dead-Letter-"
FETCH_TIMEOUT_SECONDS = 5.0
MAX_ERROR_BACKOFF_SECONDS = 5.0


class PermanentFailure(Exception):
    """Raised by a handler for an event it can never apply: dead-lettered without retries."""


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable consumer of one stream: which events, what to do, how often to try.

    `durable` names the consumer in JetStream and in the dead letters (letters, digits,
    `-` and `_`); `inbox_table` is its inbox in the service's database.
    """

    durable: str
    stream: str
    filter_subject: str
    handler: Handler
    inbox_table: str
    max_deliver: int = 5
    backoff: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0)
    ack_wait: float = 30.0
    batch: int = 10

    def __post_init__(self) -> None:
        if not self.durable or any(c in self.durable for c in ". *>"):
            raise ValueError(f"consumer name {self.durable!r} may not hold '.', '*', '>', ' '")
        if self.max_deliver < 1 or not self.backoff:
            raise ValueError("max_deliver must be at least 1 and backoff not empty")

    def delay_after(self, deliveries: int) -> float:
        """How long to wait before delivery number `deliveries + 1`."""
        return self.backoff[min(deliveries, len(self.backoff)) - 1]


class EventConsumer:
    def __init__(
        self,
        js: JetStreamContext,
        sessionmaker: async_sessionmaker[AsyncSession],
        spec: ConsumerSpec,
        *,
        dead_letters: DeadLetterSpec,
        tracing: Tracing | None = None,
        fetch_timeout: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self.js = js
        self.sessionmaker = sessionmaker
        self.spec = spec
        self.dead_letters = dead_letters
        self.tracing = tracing
        self.fetch_timeout = fetch_timeout
        self.inbox: Table = inbox_table(MetaData(), spec.inbox_table)

    @property
    def redrive_durable(self) -> str:
        return f"{self.spec.durable}_redrive"

    async def ensure(self) -> None:
        """Create the durable consumer and its redrive consumer (idempotent)."""
        spec = self.spec
        await self._add_consumer(spec.stream, spec.durable, spec.filter_subject)
        await self._add_consumer(
            self.dead_letters.stream,
            self.redrive_durable,
            self.dead_letters.redrive_subject(spec.durable),
        )

    async def _add_consumer(self, stream: str, durable: str, filter_subject: str) -> None:
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=filter_subject,
            ack_wait=self.spec.ack_wait,
            # The server redelivers until the consumer acks or dead-letters the event:
            # max_deliver is counted here, so an event is never dropped without a trace
            # (a crash while dead-lettering just delivers it again).
            max_deliver=-1,
            max_ack_pending=max(self.spec.batch * 10, 100),
        )
        try:
            await self.js.add_consumer(stream, config)
        except BadRequestError as exc:
            # Exists with another configuration (an older release): keep using it.
            logger.warning("consumer %s on %s not updated: %s", durable, stream, exc)

    async def run(self) -> None:
        """Fetch and apply events until cancelled, from the stream and from redrives."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._pull(self.spec.stream, self.spec.durable))
            group.create_task(self._pull(self.dead_letters.stream, self.redrive_durable))

    async def _pull(self, stream: str, durable: str) -> None:
        backoff = 0.0
        subscription: JetStreamContext.PullSubscription | None = None
        try:
            while True:
                try:
                    if subscription is None:
                        subscription = await self.js.pull_subscribe_bind(
                            durable=durable, stream=stream
                        )
                    messages = await subscription.fetch(self.spec.batch, timeout=self.fetch_timeout)
                except nats.errors.TimeoutError:
                    continue  # nothing new
                except Exception as exc:  # NATS away: fetch again once it is back
                    backoff = min(max(backoff * 2, 0.1), MAX_ERROR_BACKOFF_SECONDS)
                    logger.warning(
                        "consumer %s: fetch failed: %s (%s)", durable, type(exc).__name__, exc
                    )
                    await asyncio.sleep(backoff)
                    continue
                backoff = 0.0
                for message in messages:
                    try:
                        await self.process(message)
                    except Exception:  # unsettled: JetStream redelivers it after ack_wait
                        logger.exception("consumer %s: delivery not settled", durable)
        finally:
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def process(self, msg: Msg) -> str:
        """Apply one delivery and settle it; returns the outcome (for metrics and tests)."""
        consumer = self.spec.durable
        deliveries = msg.metadata.num_delivered
        if deliveries > 1:
            metrics.REDELIVERIES.labels(consumer).inc()
        headers = msg.headers or {}
        try:
            event = Event.from_json(msg.data, traceparent=headers.get(TRACEPARENT_HEADER))
        except MalformedEvent as exc:
            return await self._dead_letter(msg, deliveries, str(exc))
        try:
            applied = await self._apply_traced(event)
        except PermanentFailure as exc:
            return await self._dead_letter(msg, deliveries, _describe(exc))
        except Exception as exc:
            if not is_unavailable(exc) and deliveries >= self.spec.max_deliver:
                return await self._dead_letter(msg, deliveries, _describe(exc))
            # A database outage is retried without end: the event is not at fault.
            delay = self.spec.delay_after(deliveries)
            logger.warning(
                "consumer %s: event %s (%s) failed on delivery %d, retrying in %.0f s: %s",
                consumer,
                event.id,
                event.type,
                deliveries,
                delay,
                _describe(exc),
            )
            await msg.nak(delay=delay)
            metrics.CONSUMED.labels(consumer, "retried").inc()
            return "retried"
        await msg.ack()
        outcome = "applied" if applied else "duplicate"
        metrics.CONSUMED.labels(consumer, outcome).inc()
        return outcome

    async def _apply_traced(self, event: Event) -> bool:
        if self.tracing is None:
            return await self._apply(event)
        from opentelemetry.trace import SpanKind

        name = f"process {event.subject}"
        with self.tracing.message_span(name, SpanKind.CONSUMER, event.traceparent) as (span, _):
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.consumer.group.name", self.spec.durable)
            span.set_attribute("messaging.message.id", str(event.id))
            return await self._apply(event)

    async def _apply(self, event: Event) -> bool:
        """The inbox row and the handler's effect in one transaction; False for a repeat."""
        async with self.sessionmaker() as session:
            statement: Any
            connection = await session.connection()
            if connection.dialect.name == "postgresql":
                statement = postgresql.insert(self.inbox)
            else:
                statement = sqlite.insert(self.inbox)
            result: Any = await session.execute(
                statement.values(
                    event_id=str(event.id), event_type=event.type, received_at=datetime.now(UTC)
                ).on_conflict_do_nothing(index_elements=["event_id"])
            )
            if result.rowcount == 0:
                await session.rollback()
                return False  # applied before (or by another replica just now)
            await self.spec.handler(session, event)
            await session.commit()
            return True

    async def _dead_letter(self, msg: Msg, deliveries: int, reason: str) -> str:
        """Copy the event to the dead letters, then terminate it here.

        The copy's id is the delivery's stream and sequence: a crash between the copy and
        `term` redelivers the event, and its second copy is dropped as a duplicate.
        """
        meta = msg.metadata
        headers = {
            name: value
            for name, value in (msg.headers or {}).items()
            if name != MSG_ID_HEADER and not name.startswith(DEAD_LETTER_HEADER_PREFIX)
        }
        original_subject = (msg.headers or {}).get(
            DEAD_LETTER_HEADER_PREFIX + "Subject", msg.subject
        )
        headers.update(
            {
                MSG_ID_HEADER: f"{meta.stream}:{self.spec.durable}:{meta.sequence.stream}",
                DEAD_LETTER_HEADER_PREFIX + "Consumer": self.spec.durable,
                DEAD_LETTER_HEADER_PREFIX + "Subject": original_subject,
                DEAD_LETTER_HEADER_PREFIX + "Reason": reason[:500],
                DEAD_LETTER_HEADER_PREFIX + "Deliveries": str(deliveries),
                DEAD_LETTER_HEADER_PREFIX + "At": datetime.now(UTC).isoformat(),
            }
        )
        subject = self.dead_letters.dead_subject(self.spec.durable)
        try:
            await self.js.publish(subject, msg.data, headers=headers)
        except Exception as exc:  # NATS away: keep the event; try again later
            logger.warning("consumer %s: dead-lettering failed: %s", self.spec.durable, exc)
            await msg.nak(delay=self.spec.delay_after(deliveries))
            return "retried"
        await msg.term()
        logger.error(
            "consumer %s: event dead-lettered after %d deliveries: %s",
            self.spec.durable,
            deliveries,
            reason,
        )
        metrics.DEAD_LETTERS.labels(self.spec.durable).inc()
        metrics.CONSUMED.labels(self.spec.durable, "dead_lettered").inc()
        return "dead_lettered"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
