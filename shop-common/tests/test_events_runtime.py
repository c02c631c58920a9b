"""A service's event runtime end to end, through a NATS outage, on a private server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.events import ConsumerSpec, Event, EventRuntime, record_event
from shop_common.events.testing import commit_test_events, nats_test_url, unique_event_names
from testsupport.nats import NatsServer

pytestmark = pytest.mark.anyio
SOURCE = "outage-service"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 90) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


async def test_events_recorded_while_nats_is_down_are_kept_and_published_when_it_returns(
    event_db, tmp_path: Path
) -> None:
    names = unique_event_names()
    server = NatsServer(tmp_path / "nats")

    async def handle(session: AsyncSession, event: Event) -> None:
        await session.execute(
            insert(event_db.effect).values(event_id=str(event.id), value=event.data["value"])
        )

    async def record(value: str) -> None:
        await commit_test_events(event_db.sessionmaker, names, [value], source=SOURCE)

    async def effects() -> list[str]:
        async with event_db.engine.connect() as connection:
            return sorted((await connection.scalars(select(event_db.effect.c.value))).all())

    spec = ConsumerSpec(
        durable=f"c_{names.token}",
        stream=names.stream,
        filter_subject=names.subject(">"),
        handler=handle,
        inbox_table="inbox_test",
    )
    runtime = EventRuntime(
        nats_url=server.url,
        source=SOURCE,
        engine=event_db.engine,
        sessionmaker=event_db.sessionmaker,
        streams=[names.stream_spec()],
        consumers=[spec],
        dead_letters=names.dead_letters,
        poll_seconds=0.2,
    )
    try:
        async with runtime:
            # The service starts before NATS does: the event waits in the outbox.
            await record("before start")
            assert runtime.state == "degraded"
            server.start()
            await asyncio.wait_for(runtime.wait_ready(), 60)

            async def first_applied() -> bool:
                return await effects() == ["before start"]

            await eventually(first_applied)
            assert runtime.state == "ok"

            server.kill()
            failures = (
                REGISTRY.get_sample_value("events_publish_failures_total", {"source": SOURCE})
                or 0.0
            )
            await record("during outage 1")
            await record("during outage 2")

            async def relay_failed() -> bool:
                now = REGISTRY.get_sample_value("events_publish_failures_total", {"source": SOURCE})
                return (now or 0.0) > failures

            await eventually(relay_failed)
            assert runtime.relay is not None
            assert (await runtime.relay.lag())[0] == 2  # kept, not lost

            async def lag_reported() -> bool:
                rows = REGISTRY.get_sample_value("events_outbox_lag_rows", {"source": SOURCE})
                return rows == 2

            await eventually(lag_reported)
            assert runtime.state == "degraded"

            server.start()  # the same port and store: the stream and consumer are there

            async def all_applied() -> bool:
                return await effects() == ["before start", "during outage 1", "during outage 2"]

            await eventually(all_applied)
            relay = runtime.relay

            async def all_marked() -> bool:
                # A consumer may apply an event before the relay has marked its row.
                return await relay.lag() == (0, 0.0)

            await eventually(all_marked)
    finally:
        server.stop()


async def test_a_consumer_waits_for_a_stream_another_service_declares_later(
    event_db, nats_client, event_names
) -> None:
    async def handle(session: AsyncSession, event: Event) -> None:
        await session.execute(
            insert(event_db.effect).values(event_id=str(event.id), value=event.data["value"])
        )

    consuming = EventRuntime(
        nats_url=nats_test_url(),
        source="consuming-service",
        engine=event_db.engine,
        sessionmaker=event_db.sessionmaker,
        consumers=[
            ConsumerSpec(
                durable=f"c_{event_names.token}",
                stream=event_names.stream,
                filter_subject=event_names.subject(">"),
                handler=handle,
                inbox_table="inbox_test",
            )
        ],
        dead_letters=event_names.dead_letters,
        outbox_table=None,  # consumes only
    )
    publishing = EventRuntime(
        nats_url=nats_test_url(),
        source="publishing-service",
        engine=event_db.engine,
        streams=[event_names.stream_spec()],
    )
    async with consuming:
        await asyncio.sleep(0.5)  # it tries to declare its consumer: no such stream yet
        assert consuming.state == "degraded"
        async with publishing:
            await asyncio.wait_for(publishing.wait_ready(), 60)
            async with event_db.sessionmaker() as session:
                await record_event(
                    session,
                    source="publishing-service",
                    subject=event_names.subject("thing.changed"),
                    type="thing.changed",
                    data={"value": "delivered"},
                )
                await session.commit()
            await asyncio.wait_for(consuming.wait_ready(), 60)

            async def applied() -> bool:
                async with event_db.engine.connect() as connection:
                    values = (await connection.scalars(select(event_db.effect.c.value))).all()
                return list(values) == ["delivered"]

            await eventually(applied)
    assert consuming.state == "degraded"  # stopped
