"""A relay or a consumer in its own process, stopped dead at a chosen point by the test.

    python events_worker.py relay DATABASE_URL NATS_URL
    python events_worker.py consumer DATABASE_URL NATS_URL STREAM SUBJECT DURABLE DLQ DLQ_PREFIX

The relay stops after publishing and before marking; the consumer after committing an
event's effect and before acking it. Each prints a line there and waits to be SIGKILLed.
"""

from __future__ import annotations

import asyncio
import sys

from nats.aio.msg import Msg
from sqlalchemy import Column, MetaData, String, Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from shop_common.database import create_engine
from shop_common.events import (
    ConsumerSpec,
    DeadLetterSpec,
    Event,
    EventConsumer,
    OutboxRelay,
    connect_nats,
)

EFFECT = Table("effect", MetaData(), Column("event_id", String(36)), Column("value", String(100)))


async def stop_here(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    await asyncio.sleep(3600)  # the test kills this process now


async def relay(database_url: str, nats_url: str) -> None:
    async def published_but_not_marked(_: AsyncConnection, positions: list[int]) -> None:
        await stop_here(f"published {len(positions)}")

    engine = create_engine(database_url)
    nc = await connect_nats(nats_url, name="crash-relay")
    worker = OutboxRelay(engine, source="test-service")
    worker._mark_published = published_but_not_marked  # type: ignore[method-assign,assignment]
    await worker.publish_pending(nc.jetstream())


async def consumer(database_url: str, nats_url: str, *names: str) -> None:
    stream, subject, durable, dlq_stream, dlq_prefix = names

    async def handle(session: AsyncSession, event: Event) -> None:
        await session.execute(
            insert(EFFECT).values(event_id=str(event.id), value=event.data["value"])
        )

    async def applied_but_not_acked(self: Msg) -> None:
        await stop_here("applied")

    Msg.ack = applied_but_not_acked  # type: ignore[method-assign]
    engine = create_engine(database_url)
    nc = await connect_nats(nats_url, name="crash-consumer")
    spec = ConsumerSpec(
        durable=durable,
        stream=stream,
        filter_subject=subject,
        handler=handle,
        inbox_table="inbox_test",
        ack_wait=2.0,
    )
    worker = EventConsumer(
        nc.jetstream(),
        async_sessionmaker(engine, expire_on_commit=False),
        spec,
        dead_letters=DeadLetterSpec(stream=dlq_stream, prefix=dlq_prefix),
        fetch_timeout=1,
    )
    await worker.ensure()
    await worker.run()


if __name__ == "__main__":
    role, *arguments = sys.argv[1:]
    asyncio.run(relay(*arguments) if role == "relay" else consumer(*arguments))
