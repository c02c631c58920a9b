"""Consumers on the real NATS server: applied once, retried, dead-lettered, redriven."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.events import (
    ConsumerSpec,
    Event,
    EventConsumer,
    OutboxRelay,
    PermanentFailure,
    ensure_streams,
)
from shop_common.events.__main__ import main as events_cli
from shop_common.events.dead_letters import list_dead_letters
from shop_common.events.testing import EventNames, commit_test_events, nats_test_url

pytestmark = pytest.mark.anyio
SOURCE = "test-service"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
    """Wait for a condition the system reaches by itself (no timing is asserted)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(consumer: EventConsumer) -> AsyncIterator[None]:
    task = asyncio.create_task(consumer.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def publish(event_db, js: JetStreamContext, names: EventNames, values: list[str]) -> None:
    await commit_test_events(event_db.sessionmaker, names, values, source=SOURCE)
    await OutboxRelay(event_db.engine, source=SOURCE).publish_pending(js)


def effect_writer(event_db, fail_on: Callable[[Event], BaseException | None] = lambda _: None):
    async def handle(session: AsyncSession, event: Event) -> None:
        await session.execute(
            insert(event_db.effect).values(event_id=str(event.id), value=event.data["value"])
        )
        failure = fail_on(event)
        if failure is not None:
            raise failure  # after writing: the rollback must undo it

    return handle


async def effects(event_db) -> list[str]:
    async with event_db.engine.connect() as connection:
        return sorted((await connection.scalars(select(event_db.effect.c.value))).all())


async def settled(js: JetStreamContext, stream: str, durable: str) -> bool:
    info = await js.consumer_info(stream, durable)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


def make_consumer(
    event_db, js: JetStreamContext, names: EventNames, handler: Any, **options: Any
) -> EventConsumer:
    spec = ConsumerSpec(
        durable=f"c_{names.token}",
        stream=names.stream,
        filter_subject=names.subject(">"),
        handler=handler,
        inbox_table="inbox_test",
        **options,
    )
    return EventConsumer(
        js, event_db.sessionmaker, spec, dead_letters=names.dead_letters, fetch_timeout=1
    )


async def test_each_event_is_applied_once_also_when_delivered_twice(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec(), event_names.dead_letters.stream_spec()])
    consumer = make_consumer(event_db, js, event_names, effect_writer(event_db))
    await consumer.ensure()
    await publish(event_db, js, event_names, ["a", "b", "c"])
    async with running(consumer):
        await eventually(lambda: settled(js, event_names.stream, consumer.spec.durable))
        assert await effects(event_db) == ["a", "b", "c"]
        # The same event again under another message id: past JetStream's duplicate
        # window, or published by a second outbox. The inbox drops it.
        info = await js.stream_info(event_names.stream)
        raw = await js.get_msg(event_names.stream, seq=info.state.first_seq)
        assert raw.data is not None and raw.subject is not None
        await js.publish(raw.subject, raw.data, headers={"Nats-Msg-Id": "another-id"})
        await eventually(lambda: settled(js, event_names.stream, consumer.spec.durable))
    assert await effects(event_db) == ["a", "b", "c"]
    async with event_db.engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(event_db.inbox)) == 3


async def test_a_failing_event_is_retried_then_dead_lettered_and_redriven_once_fixed(
    event_db, nats_client: Client, event_names: EventNames, capsys: pytest.CaptureFixture[str]
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec(), event_names.dead_letters.stream_spec()])
    broken = {"poison"}

    def fail_on(event: Event) -> BaseException | None:
        return RuntimeError("cannot apply") if event.data["value"] in broken else None

    consumer = make_consumer(
        event_db, js, event_names, effect_writer(event_db, fail_on), max_deliver=3, backoff=(0.1,)
    )
    await consumer.ensure()
    await publish(event_db, js, event_names, ["a", "poison", "b"])
    dead = event_names.dead_letters
    async with running(consumer):

        async def dead_lettered() -> bool:
            return len(await list_dead_letters(js, dead)) == 1

        await eventually(dead_lettered)
        await eventually(lambda: settled(js, event_names.stream, consumer.spec.durable))
        assert await effects(event_db) == ["a", "b"]  # the others went on meanwhile
        (letter,) = await list_dead_letters(js, dead, consumer=consumer.spec.durable)
        assert letter.deliveries == 3
        assert letter.reason == "RuntimeError: cannot apply"
        assert letter.event_type == "thing.changed"
        assert letter.subject == event_names.subject("thing.changed")
        durable = consumer.spec.durable
        assert REGISTRY.get_sample_value("events_dead_letters_total", {"consumer": durable}) == 1
        assert REGISTRY.get_sample_value("events_redeliveries_total", {"consumer": durable}) == 2

        cli = ["--nats-url", nats_test_url(), "--stream", dead.stream, "--prefix", dead.prefix]
        assert await asyncio.to_thread(events_cli, [*cli, "dead-letters"]) == 0
        (line,) = capsys.readouterr().out.splitlines()
        listed = json.loads(line)
        assert listed["consumer"] == durable and listed["deliveries"] == 3
        assert listed["event_id"] == letter.event_id and listed["sequence"] == letter.sequence

        broken.clear()  # the bug is fixed and deployed
        code = await asyncio.to_thread(events_cli, [*cli, "redrive", "--consumer", durable])
        assert code == 0

        async def redriven() -> bool:
            return await effects(event_db) == ["a", "b", "poison"]

        await eventually(redriven)
        assert await list_dead_letters(js, dead) == []


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(PermanentFailure("no such product"), id="permanent"),
    ],
)
async def test_a_permanent_failure_is_dead_lettered_at_once(
    event_db, nats_client: Client, event_names: EventNames, failure: BaseException
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec(), event_names.dead_letters.stream_spec()])
    consumer = make_consumer(
        event_db, js, event_names, effect_writer(event_db, lambda _: failure), max_deliver=5
    )
    await consumer.ensure()
    await publish(event_db, js, event_names, ["x"])
    async with running(consumer):

        async def dead_lettered() -> bool:
            return len(await list_dead_letters(js, event_names.dead_letters)) == 1

        await eventually(dead_lettered)
    (letter,) = await list_dead_letters(js, event_names.dead_letters)
    assert letter.deliveries == 1
    assert letter.reason == "PermanentFailure: no such product"
    assert await effects(event_db) == []


async def test_a_message_that_is_no_event_is_dead_lettered(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec(), event_names.dead_letters.stream_spec()])
    consumer = make_consumer(event_db, js, event_names, effect_writer(event_db))
    await consumer.ensure()
    await js.publish(event_names.subject("junk"), b"{not json")
    async with running(consumer):

        async def dead_lettered() -> bool:
            return len(await list_dead_letters(js, event_names.dead_letters)) == 1

        await eventually(dead_lettered)
    (letter,) = await list_dead_letters(js, event_names.dead_letters)
    assert letter.reason.startswith("not an event envelope")
    assert letter.event_id is None and letter.data == b"{not json"
