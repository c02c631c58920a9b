"""Crashes as `kill -9` makes them, on real processes and the real NATS server."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select

from shop_common.events import (
    ConsumerSpec,
    Event,
    EventConsumer,
    OutboxRelay,
    ensure_streams,
)
from shop_common.events.testing import EventNames, commit_test_events, nats_test_url

pytestmark = pytest.mark.anyio
WORKER = Path(__file__).with_name("events_worker.py")
SOURCE = "test-service"


@contextlib.contextmanager
def worker(*arguments: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, str(WORKER), *arguments],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()


async def killed_at(process: subprocess.Popen[str], line: str) -> None:
    """Wait for the worker to reach its stopping point, then SIGKILL it there."""
    assert process.stdout is not None
    printed = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 120)
    assert printed.startswith(line), printed
    process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(process.wait, 30)


async def test_a_relay_killed_between_publish_and_mark_delivers_no_duplicate(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec()])
    events = await commit_test_events(
        event_db.sessionmaker, event_names, ["a", "b", "c"], source=SOURCE
    )

    with worker("relay", event_db.url, nats_test_url()) as process:
        await killed_at(process, "published 3")
    async with event_db.engine.connect() as connection:  # published, never marked
        unmarked = event_db.outbox.c.published_at.is_(None)
        assert await connection.scalar(select(func.count()).where(unmarked)) == 3

    # The restarted relay publishes the rows again; JetStream drops the repeats.
    relay = OutboxRelay(event_db.engine, source=SOURCE)
    assert await relay.publish_pending(js) == 3
    assert await relay.lag() == (0, 0.0)

    await js.add_consumer(
        event_names.stream,
        ConsumerConfig(durable_name="reader", ack_policy=AckPolicy.EXPLICIT),
    )
    reader = await js.pull_subscribe_bind(durable="reader", stream=event_names.stream)
    delivered = await reader.fetch(10, timeout=2)
    assert [Event.from_json(message.data).id for message in delivered] == [e.id for e in events]


async def test_a_consumer_killed_between_its_effect_and_its_ack_applies_the_event_once(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    js = nats_client.jetstream()
    dead = event_names.dead_letters
    await ensure_streams(js, [event_names.stream_spec(), dead.stream_spec()])
    (event,) = await commit_test_events(event_db.sessionmaker, event_names, ["once"], source=SOURCE)
    await OutboxRelay(event_db.engine, source=SOURCE).publish_pending(js)
    durable = f"c_{event_names.token}"

    arguments = (event_names.stream, event_names.subject(">"), durable, dead.stream, dead.prefix)
    with worker("consumer", event_db.url, nats_test_url(), *arguments) as process:
        await killed_at(process, "applied")
    async with event_db.engine.connect() as connection:  # committed, never acked
        assert (await connection.scalars(select(event_db.effect.c.event_id))).all() == [
            str(event.id)
        ]

    async def handle(session, delivered: Event) -> None:
        await session.execute(
            insert(event_db.effect).values(event_id=str(delivered.id), value="again")
        )

    spec = ConsumerSpec(
        durable=durable,
        stream=event_names.stream,
        filter_subject=event_names.subject(">"),
        handler=handle,
        inbox_table="inbox_test",
        ack_wait=2.0,
    )
    restarted = EventConsumer(js, event_db.sessionmaker, spec, dead_letters=dead)
    subscription = await js.pull_subscribe_bind(durable=durable, stream=event_names.stream)
    # The unacked delivery comes back once its ack_wait has passed.
    (redelivered,) = await subscription.fetch(1, timeout=60)
    assert redelivered.metadata.num_delivered == 2
    assert await restarted.process(redelivered) == "duplicate"

    async with event_db.engine.connect() as connection:
        assert (await connection.scalars(select(event_db.effect.c.value))).all() == ["once"]
    assert REGISTRY.get_sample_value(
        "events_redeliveries_total", {"consumer": durable}
    ) == pytest.approx(1)
    info = await js.consumer_info(event_names.stream, durable)
    for _ in range(100):  # the ack reaches the server
        if info.num_ack_pending == 0:
            break
        await asyncio.sleep(0.05)
        info = await js.consumer_info(event_names.stream, durable)
    assert info.num_ack_pending == 0 and info.num_pending == 0
