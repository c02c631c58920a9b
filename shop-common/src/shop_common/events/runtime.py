"""What a service runs in its lifespan: the NATS connection, its streams, relay, consumers.

    events = EventRuntime(
        nats_url=settings.nats_url, source="order-service", engine=engine,
        sessionmaker=sessionmaker, streams=[ORDERS], consumers=[...], outbox_table="order_outbox",
    )
    async with events:        # returns at once; connects in the background
        yield

NATS may be down when the service starts or at any time later: the service keeps
serving, its outbox keeps the events, and the relay publishes them once NATS is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from nats.aio.client import Client
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shop_common.events.consumer import ConsumerSpec, EventConsumer
from shop_common.events.relay import OutboxRelay
from shop_common.events.streams import DeadLetterSpec, StreamSpec, ensure_streams
from shop_common.events.tables import DEFAULT_OUTBOX_TABLE

if TYPE_CHECKING:
    from shop_common.tracing import Tracing

logger = logging.getLogger(__name__)
SETUP_RETRY_SECONDS = 1.0


async def connect_nats(url: str, *, name: str) -> Client:
    """A connection that keeps reconnecting for ever (an outage is waited out)."""
    client = Client()

    async def on_error(exc: Exception) -> None:
        logger.debug("nats: %s: %s", type(exc).__name__, exc)

    async def on_disconnect() -> None:
        if not client.is_closed:  # closing also calls this
            logger.warning("nats: disconnected; reconnecting")

    async def on_reconnect() -> None:
        logger.info("nats: reconnected")

    await client.connect(
        servers=[server.strip() for server in url.split(",") if server.strip()],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=2,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
    )
    return client


class EventRuntime:
    def __init__(
        self,
        *,
        nats_url: str,
        source: str,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        streams: Sequence[StreamSpec] = (),
        consumers: Sequence[ConsumerSpec] = (),
        dead_letters: DeadLetterSpec | None = None,
        outbox_table: str | None = DEFAULT_OUTBOX_TABLE,
        poll_seconds: float = 1.0,
        tracing: Tracing | None = None,
    ) -> None:
        """`outbox_table=None` runs no relay (a service that only consumes)."""
        if consumers and sessionmaker is None:
            raise ValueError("consumers need a sessionmaker")
        self.nats_url = nats_url
        self.source = source
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.streams = list(streams)
        self.consumer_specs = list(consumers)
        self.dead_letters = dead_letters or DeadLetterSpec()
        self.tracing = tracing
        self.relay = (
            OutboxRelay(
                engine,
                source=source,
                table=outbox_table,
                poll_seconds=poll_seconds,
                tracing=tracing,
            )
            if outbox_table
            else None
        )
        self.nc: Client | None = None
        self.consumers: list[EventConsumer] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> str:
        """`ok` once streams and consumers are set up and NATS is connected, else `degraded`."""
        if self._ready.is_set() and self.nc is not None and self.nc.is_connected:
            return "ok"
        return "degraded"

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"events:{self.source}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def __aenter__(self) -> EventRuntime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self) -> None:
        """Connect, declare this service's streams, then relay and consume: the relay does
        not wait for the consumers, whose streams another service may not have created yet."""
        self.nc = await connect_nats(self.nats_url, name=self.source)
        js = self.nc.jetstream()
        streams = list(self.streams)
        if self.consumer_specs:
            streams.append(self.dead_letters.stream_spec())
        await _retrying("declaring streams", lambda: ensure_streams(js, streams))
        assert self.sessionmaker is not None or not self.consumer_specs
        self.consumers = [
            EventConsumer(
                js, self.sessionmaker, spec, dead_letters=self.dead_letters, tracing=self.tracing
            )
            for spec in self.consumer_specs
            if self.sessionmaker is not None
        ]
        relay = self.relay
        declared = [asyncio.Event() for _ in self.consumers]
        async with asyncio.TaskGroup() as group:
            if relay is not None:
                group.create_task(_restarting("relay", functools.partial(relay.run, js)))
            for consumer, done in zip(self.consumers, declared, strict=True):
                group.create_task(self._consume(consumer, done))
            for done in declared:
                await done.wait()
            self._ready.set()
            logger.info("events: streams and consumers ready")

    @staticmethod
    async def _consume(consumer: EventConsumer, declared: asyncio.Event) -> None:
        name = consumer.spec.durable
        await _retrying(f"declaring consumer {name}", consumer.ensure)
        declared.set()
        await _restarting(f"consumer {name}", consumer.run)


async def _retrying(what: str, step: Callable[[], Awaitable[object]]) -> None:
    """Retry a setup step while NATS is unreachable (or a stream not yet created)."""
    while True:
        try:
            await step()
            return
        except Exception as exc:
            logger.warning("events: %s failed (%s); retrying", what, exc)
            await asyncio.sleep(SETUP_RETRY_SECONDS)


async def _restarting(what: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Keep a loop running: a bug in one event must not stop the relay or the others."""
    while True:
        try:
            await loop()
        except Exception:
            logger.exception("events: %s stopped; restarting", what)
            await asyncio.sleep(SETUP_RETRY_SECONDS)
