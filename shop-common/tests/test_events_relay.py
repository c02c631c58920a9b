"""The outbox relay on the real NATS server: once, in order, woken by commits."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from shop_common.database import create_engine
from shop_common.events import Event, OutboxRelay, ensure_streams, record_event
from shop_common.events.testing import EventNames, commit_test_events

pytestmark = pytest.mark.anyio
SOURCE = "test-service"


async def stream_messages(js: JetStreamContext, stream: str) -> list[tuple[dict[str, str], Event]]:
    """Every message in the stream, in stream order: headers and envelope."""
    info = await js.stream_info(stream)
    found = []
    for sequence in range(info.state.first_seq, info.state.last_seq + 1):
        with contextlib.suppress(NotFoundError):
            raw = await js.get_msg(stream, seq=sequence)
            assert raw.data is not None
            found.append((dict(raw.headers or {}), Event.from_json(raw.data)))
    return found


async def test_committed_events_are_published_once_in_order_and_marked(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec()])
    first = await commit_test_events(
        event_db.sessionmaker, event_names, ["a", "b", "c"], source=SOURCE
    )
    second = await commit_test_events(event_db.sessionmaker, event_names, ["d", "e"], source=SOURCE)
    relay = OutboxRelay(event_db.engine, source=SOURCE, batch_size=2)

    assert await relay.publish_pending(js) == 5
    assert await relay.publish_pending(js) == 0

    messages = await stream_messages(js, event_names.stream)
    assert [event.id for _, event in messages] == [event.id for event in first + second]
    assert [event.data["value"] for _, event in messages] == ["a", "b", "c", "d", "e"]
    for headers, event in messages:
        assert headers["Nats-Msg-Id"] == str(event.id)
        assert event.source == SOURCE and event.type == "thing.changed"
    assert await relay.lag() == (0, 0.0)


async def test_events_of_a_rolled_back_transaction_are_never_published(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec()])
    async with event_db.sessionmaker() as session:
        await record_event(
            session, source=SOURCE, subject=event_names.subject("x"), type="x", data={}
        )
        await session.rollback()
    relay = OutboxRelay(event_db.engine, source=SOURCE)
    assert await relay.publish_pending(js) == 0
    info = await js.stream_info(event_names.stream)
    assert info.state.messages == 0


async def test_a_row_published_again_before_its_mark_is_not_stored_twice(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec()])
    events = await commit_test_events(event_db.sessionmaker, event_names, ["a", "b"], source=SOURCE)
    relay = OutboxRelay(event_db.engine, source=SOURCE)
    assert await relay.publish_pending(js) == 2
    # What a relay that died between publishing and marking leaves behind.
    async with event_db.engine.begin() as connection:
        await connection.execute(update(event_db.outbox).values(published_at=None))
    assert await relay.publish_pending(js) == 2

    messages = await stream_messages(js, event_names.stream)
    assert [event.id for _, event in messages] == [event.id for event in events]


async def test_lag_counts_unpublished_rows_and_the_oldest_ones_age(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec()])
    await commit_test_events(event_db.sessionmaker, event_names, ["a", "b", "c"], source=SOURCE)
    relay = OutboxRelay(event_db.engine, source=SOURCE)
    rows, seconds = await relay.lag()
    assert rows == 3 and seconds >= 0
    await relay.publish_pending(js)
    assert await relay.lag() == (0, 0.0)


async def test_a_commit_wakes_the_relay_without_waiting_for_its_poll(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec()])
    relay = OutboxRelay(event_db.engine, source=SOURCE, poll_seconds=3600)
    task = asyncio.create_task(relay.run(js))
    try:
        await asyncio.sleep(0.2)  # the relay's first pass found nothing and waits an hour
        (event,) = await commit_test_events(
            event_db.sessionmaker, event_names, ["woken"], source=SOURCE
        )
        for _ in range(600):
            info = await js.stream_info(event_names.stream)
            if info.state.messages:
                break
            await asyncio.sleep(0.05)
        messages = await stream_messages(js, event_names.stream)
        assert [e.id for _, e in messages] == [event.id]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_relay_can_be_given_the_event_id(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec()])
    chosen = uuid.uuid4()
    async with event_db.sessionmaker() as session:
        recorded = await record_event(
            session,
            source=SOURCE,
            subject=event_names.subject("x"),
            type="x",
            data={"n": 1},
            event_id=chosen,
        )
        await session.commit()
    assert recorded.id == chosen
    async with event_db.engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(event_db.outbox)) == 1
    await OutboxRelay(event_db.engine, source=SOURCE).publish_pending(js)
    ((headers, event),) = await stream_messages(js, event_names.stream)
    assert headers["Nats-Msg-Id"] == str(chosen) and event.data == {"n": 1}


async def test_two_relays_on_one_outbox_publish_each_event_once_and_in_order(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    """Replicas: on PostgreSQL one relays while the other finds the lock taken."""
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec()])
    second_engine = create_engine(event_db.url)
    relays = [
        OutboxRelay(event_db.engine, source=SOURCE, batch_size=3),
        OutboxRelay(second_engine, source=SOURCE, batch_size=3),
    ]
    recorded: list[Event] = []
    try:
        for round_ in range(5):
            values = [f"{round_}-{i}" for i in range(4)]
            writes = commit_test_events(event_db.sessionmaker, event_names, values, source=SOURCE)
            passes = (relay.publish_pending(js) for relay in relays for _ in range(2))
            events, *_ = await asyncio.gather(writes, *passes)
            assert isinstance(events, list)
            recorded += events
        for relay in relays:
            await relay.publish_pending(js)
    finally:
        await second_engine.dispose()
    messages = await stream_messages(js, event_names.stream)
    assert [event.id for _, event in messages] == [event.id for event in recorded]


async def test_declaring_a_stream_again_updates_it(
    nats_client: Client, event_names: EventNames
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec()])
    await ensure_streams(js, [event_names.stream_spec()])  # unchanged: nothing to do
    await ensure_streams(js, [event_names.stream_spec(duplicate_window=300.0)])
    info = await js.stream_info(event_names.stream)
    assert info.config.duplicate_window == 300.0
    assert info.config.subjects == [event_names.subject(">")]


async def test_the_relay_reports_its_lag_as_metrics(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    source = f"lag-{event_names.token}"
    js = nats_client.jetstream()
    async with event_db.sessionmaker() as session:
        await record_event(
            session, source=source, subject=event_names.subject("x"), type="x", data={}
        )
        await session.commit()
    relay = OutboxRelay(event_db.engine, source=source)
    await relay._update_lag()
    assert REGISTRY.get_sample_value("events_outbox_lag_rows", {"source": source}) == 1
    assert (REGISTRY.get_sample_value("events_outbox_lag_seconds", {"source": source}) or 0) >= 0
    await ensure_streams(js, [event_names.stream_spec()])
    await relay.publish_pending(js)
    await relay._update_lag()
    assert REGISTRY.get_sample_value("events_outbox_lag_rows", {"source": source}) == 0
    assert REGISTRY.get_sample_value("events_outbox_lag_seconds", {"source": source}) == 0
    assert REGISTRY.get_sample_value("events_published_total", {"source": source}) == 1


async def test_published_rows_are_purged_after_their_retention_and_unpublished_ones_never(
    event_db, nats_client: Client, event_names: EventNames
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, [event_names.stream_spec()])
    old, recent = await commit_test_events(
        event_db.sessionmaker, event_names, ["old", "recent"], source=SOURCE
    )
    relay = OutboxRelay(event_db.engine, source=SOURCE, keep_published=timedelta(days=7))
    await relay.publish_pending(js)
    (waiting,) = await commit_test_events(
        event_db.sessionmaker, event_names, ["not yet published"], source=SOURCE
    )
    long_ago = datetime.now(UTC) - timedelta(days=30)
    async with event_db.engine.begin() as connection:
        outbox = event_db.outbox
        await connection.execute(
            update(outbox).where(outbox.c.id == str(old.id)).values(published_at=long_ago)
        )
        await connection.execute(
            update(outbox).where(outbox.c.id == str(waiting.id)).values(occurred_at=long_ago)
        )

    assert await relay.purge_published() == 1
    async with event_db.engine.connect() as connection:
        left = set((await connection.scalars(select(event_db.outbox.c.id))).all())
    assert left == {str(recent.id), str(waiting.id)}
