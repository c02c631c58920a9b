"""One trace from the request that recorded an event, through the relay, to the consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from nats.aio.client import Client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.events import (
    ConsumerSpec,
    Event,
    EventConsumer,
    OutboxRelay,
    ensure_streams,
    record_event,
)
from shop_common.events.testing import EventNames
from shop_common.tracing import Tracing, trace_sql

pytestmark = pytest.mark.anyio


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


async def test_the_trace_runs_from_the_request_through_the_relay_to_the_consumer(
    event_db, nats_client: Client, event_names: EventNames, exporter: InMemorySpanExporter
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    trace_sql()
    js = nats_client.jetstream()
    dead = event_names.dead_letters
    await ensure_streams(js, [event_names.stream_spec(), dead.stream_spec()])
    subject = event_names.subject("order.created")

    with tracing.tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as request:
        async with event_db.sessionmaker() as session:
            await record_event(
                session, source="svc", subject=subject, type="order.created", data={"n": 1}
            )
            await session.commit()
    await OutboxRelay(event_db.engine, source="svc", tracing=tracing).publish_pending(js)

    async def handle(session: AsyncSession, event: Event) -> None:
        await session.execute(insert(event_db.effect).values(event_id=str(event.id), value="x"))

    spec = ConsumerSpec(
        durable=f"c_{event_names.token}",
        stream=event_names.stream,
        filter_subject=event_names.subject(">"),
        handler=handle,
        inbox_table="inbox_test",
    )
    consumer = EventConsumer(js, event_db.sessionmaker, spec, dead_letters=dead, tracing=tracing)
    await consumer.ensure()
    subscription = await js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)
    (message,) = await subscription.fetch(1, timeout=30)
    assert await consumer.process(message) == "applied"
    await asyncio.sleep(0)
    provider.shutdown()

    spans = exporter.get_finished_spans()
    publish = next(s for s in spans if s.name == f"publish {subject}")
    process = next(s for s in spans if s.name == f"process {subject}")
    inserts = [s for s in spans if s.name == "INSERT" and s.parent is not None]
    trace_id = request.get_span_context().trace_id
    assert publish.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    assert {publish.context.trace_id, process.context.trace_id} == {trace_id}
    assert publish.parent is not None
    assert publish.parent.span_id == request.get_span_context().span_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
    # The consumer's SQL (inbox row and effect) is inside its span.
    assert {s.parent.span_id for s in inserts if s.parent} >= {process.context.span_id}
