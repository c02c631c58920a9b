"""product-service's events: each product write records one outbox row in its transaction;
on a real NATS server the relay publishes them to PRODUCTS and the consumer of order events
releases a given-up order's stock once, however often the event arrives."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text

from product_service.consumers import EventWiring
from shop_common.credential import CredentialSigner
from shop_common.events import Event, ensure_streams
from shop_common.events.envelope import MSG_ID_HEADER
from shop_common.events.testing import EventNames, nats_test_url, unique_event_names
from shop_common.testing import GatewayKeys
from shop_common.tracing import Tracing
from testsupport.product import CallerAuth, Shop, migrated_database, running_shop

pytestmark = pytest.mark.anyio
WAIT_SECONDS = 30.0
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def outbox_rows(shop: Shop) -> list[dict[str, Any]]:
    async with shop.app.state.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT id, type, source, subject, data FROM product_outbox ORDER BY position")
        )
        return [{**row._mapping, "data": orjson.loads(row.data)} for row in rows]


async def events_about(shop: Shop, product_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (row["type"], row["subject"], row["data"])
        for row in await outbox_rows(shop)
        if product_id in (row["data"].get("id"), row["data"].get("product_id"))
    ]


async def test_each_product_write_records_its_event_in_the_outbox(shop: Shop) -> None:
    owner = shop.as_user()
    created = await shop.create(owner, stock=3)
    url = f"/products/{created['id']}"
    replaced = (
        await shop.client.put(url, json={"name": "New", "price": 2.5}, headers=owner)
    ).json()
    patched = (await shop.client.patch(url, json={"stock": 7}, headers=owner)).json()
    deleted = await shop.client.delete(url, headers=shop.as_admin())
    assert deleted.status_code == 204

    assert await events_about(shop, created["id"]) == [
        ("product.created", "products.created", created),
        ("product.updated", "products.updated", replaced),
        ("product.updated", "products.updated", patched),
        ("product.deleted", "products.deleted", {"id": created["id"]}),
    ]
    rows = await outbox_rows(shop)
    assert {row["source"] for row in rows} == {"product-service"}
    assert len({row["id"] for row in rows}) == len(rows)


async def test_a_refused_write_records_no_event(shop: Shop) -> None:
    owner = shop.as_user()
    product = await shop.create(owner)
    before = len(await outbox_rows(shop))
    url = f"/products/{product['id']}"
    refused = [
        await shop.client.post(
            "/products", json={"name": "x", "price": 1, "sku": product["sku"]}, headers=owner
        ),
        await shop.client.patch(url, json={"stock": 1}, headers=shop.as_user()),
        await shop.client.patch(url, json={"stock": 1}, headers={**owner, "if-match": '"x"'}),
        await shop.client.delete(url, headers=owner),
    ]
    assert [r.status_code for r in refused] == [409, 403, 412, 403]
    assert len(await outbox_rows(shop)) == before


@pytest.fixture
async def nats() -> AsyncIterator[tuple[Client, JetStreamContext]]:
    client = Client()
    await client.connect(nats_test_url(), connect_timeout=5)
    try:
        yield client, client.jetstream()
    finally:
        await client.close()


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


@pytest.fixture
async def events_shop(
    gateway_keys: GatewayKeys,
    data_dir: Path,
    tmp_path: Path,
    nats: tuple[Client, JetStreamContext],
    exporter: InMemorySpanExporter,
) -> AsyncIterator[tuple[Shop, EventNames]]:
    """On PostgreSQL (two sessions really racing) with its event runtime running against
    the real NATS server: a fresh database (only this test's events in the outbox), and a
    private stream in place of ORDERS."""
    names = unique_event_names()
    wiring = EventWiring(
        orders_stream=names.stream,
        orders_filter=names.subject(">"),
        durable=f"product-service-orders-{names.token}",
        dead_letters=names.dead_letters,
    )
    await ensure_streams(nats[1], [names.stream_spec()])  # what order-service declares
    async with contextlib.aclosing(migrated_database("postgres", tmp_path)) as databases:
        url = await anext(databases)
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        async with running_shop(
            url,
            gateway_keys,
            data_dir,
            nats_url=nats_test_url(),
            events=wiring,
            tracing=Tracing(provider),
        ) as shop:
            yield shop, names


async def publish(js: JetStreamContext, names: EventNames, event: Event, msg_id: str) -> None:
    headers = {**event.headers(), MSG_ID_HEADER: msg_id}
    await js.publish(
        names.subject(event.type.removeprefix("order.")), event.to_json(), headers=headers
    )


def order_event(kind: str, order_id: str) -> Event:
    return Event(
        type=f"order.{kind}",
        source="order-service",
        subject=f"orders.{kind}",
        data={"order_id": order_id, "status": kind},
    )


async def settled(js: JetStreamContext, shop: Shop, names: EventNames, delivered: int) -> None:
    """Until the consumer has acked `delivered` messages of the stream."""
    runtime = shop.app.state.events
    await asyncio.wait_for(runtime.wait_ready(), WAIT_SECONDS)
    durable = runtime.consumer_specs[0].durable
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            info = await js.consumer_info(names.stream, durable)
            if info.ack_floor.stream_seq >= delivered and info.num_ack_pending == 0:
                return
            await asyncio.sleep(0.05)


async def inbox_count(shop: Shop, event_id: uuid.UUID) -> int:
    async with shop.app.state.engine.connect() as connection:
        count: int = (
            await connection.execute(
                text("SELECT count(*) FROM product_inbox_orders WHERE event_id = :id"),
                {"id": str(event_id)},
            )
        ).scalar_one()
    return count


async def stock(shop: Shop, product_id: str) -> int:
    response = await shop.client.get(f"/products/{product_id}", headers=shop.anonymous())
    value: int = response.json()["stock"]
    return value


async def released_events(shop: Shop, order_id: str) -> list[dict[str, Any]]:
    return [
        row["data"]
        for row in await outbox_rows(shop)
        if row["type"] == "product.stock_released" and row["data"]["order_id"] == order_id
    ]


async def test_an_order_cancelled_event_delivered_twice_releases_the_stock_once(
    events_shop: tuple[Shop, EventNames],
    nats: tuple[Client, JetStreamContext],
    order_service_keys: CredentialSigner,
) -> None:
    shop, names = events_shop
    _, js = nats
    lamp = await shop.create(shop.as_user(), stock=5)
    order_id = str(uuid.uuid4())
    reserved = await shop.client.put(
        f"/stock/reservations/{order_id}",
        json={"items": [{"product_id": lamp["id"], "quantity": 4}]},
        auth=CallerAuth(order_service_keys),
    )
    assert reserved.status_code == 201
    event = order_event("cancelled", order_id)

    # The same event twice, under two message ids: JetStream stores and delivers both.
    await publish(js, names, event, str(event.id))
    await publish(js, names, event, f"{event.id}-again")
    await settled(js, shop, names, delivered=2)

    assert await stock(shop, lamp["id"]) == 5
    assert await inbox_count(shop, event.id) == 1
    assert await released_events(shop, order_id) == [
        {"order_id": order_id, "items": [{"product_id": lamp["id"], "quantity": 4}]}
    ]


async def test_a_release_racing_the_cancelled_event_returns_the_stock_once(
    events_shop: tuple[Shop, EventNames],
    nats: tuple[Client, JetStreamContext],
    order_service_keys: CredentialSigner,
) -> None:
    shop, names = events_shop
    _, js = nats
    auth = CallerAuth(order_service_keys)
    lamp = await shop.create(shop.as_user(), stock=100)
    order_ids = [str(uuid.uuid4()) for _ in range(5)]
    for order_id in order_ids:
        body = {"items": [{"product_id": lamp["id"], "quantity": 2}]}
        put = await shop.client.put(f"/stock/reservations/{order_id}", json=body, auth=auth)
        assert put.status_code == 201
    assert await stock(shop, lamp["id"]) == 90

    async def cancel(order_id: str) -> None:
        event = order_event("expired", order_id)
        await publish(js, names, event, str(event.id))

    async def delete(order_id: str) -> None:
        response = await shop.client.delete(f"/stock/reservations/{order_id}", auth=auth)
        assert response.status_code == 204

    await asyncio.gather(*(f(o) for o in order_ids for f in (cancel, delete)))
    await settled(js, shop, names, delivered=len(order_ids))

    assert await stock(shop, lamp["id"]) == 100
    for order_id in order_ids:
        assert len(await released_events(shop, order_id)) == 1


async def test_other_order_events_are_acked_and_change_nothing(
    events_shop: tuple[Shop, EventNames],
    nats: tuple[Client, JetStreamContext],
    order_service_keys: CredentialSigner,
) -> None:
    shop, names = events_shop
    _, js = nats
    lamp = await shop.create(shop.as_user(), stock=5)
    order_id = str(uuid.uuid4())
    body = {"items": [{"product_id": lamp["id"], "quantity": 1}]}
    auth = CallerAuth(order_service_keys)
    assert (
        await shop.client.put(f"/stock/reservations/{order_id}", json=body, auth=auth)
    ).status_code == 201

    for kind in ("placed", "paid", "shipped"):
        event = order_event(kind, order_id)
        await publish(js, names, event, str(event.id))
    await settled(js, shop, names, delivered=3)

    assert await stock(shop, lamp["id"]) == 4
    assert await released_events(shop, order_id) == []


async def test_the_relay_publishes_product_events_to_the_products_stream(
    events_shop: tuple[Shop, EventNames], nats: tuple[Client, JetStreamContext]
) -> None:
    shop, _ = events_shop
    _, js = nats
    await asyncio.wait_for(shop.app.state.events.wait_ready(), WAIT_SECONDS)
    # From now on (other processes may publish to the shared server's PRODUCTS too).
    subscription = await js.pull_subscribe(
        "products.created",
        stream="PRODUCTS",
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
    )
    created = await shop.create(shop.as_user(), stock=2)
    [row] = [r for r in await outbox_rows(shop) if r["data"].get("id") == created["id"]]

    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            try:
                messages = await subscription.fetch(10, timeout=1)
            except TimeoutError:
                continue
            mine = [m for m in messages if (m.headers or {}).get(MSG_ID_HEADER) == row["id"]]
            if mine:
                break
    await subscription.unsubscribe()
    body = orjson.loads(mine[0].data)
    assert (body["id"], body["type"], body["data"]) == (row["id"], "product.created", created)


async def test_a_releasing_event_without_an_order_id_goes_to_the_dead_letters(
    events_shop: tuple[Shop, EventNames], nats: tuple[Client, JetStreamContext]
) -> None:
    shop, names = events_shop
    _, js = nats
    event = Event(
        type="order.cancelled", source="order-service", subject="orders.cancelled", data={}
    )

    await publish(js, names, event, str(event.id))
    await settled(js, shop, names, delivered=1)

    durable = shop.app.state.events.consumer_specs[0].durable
    letter = await js.get_last_msg(
        names.dead_letters.stream, names.dead_letters.dead_subject(durable)
    )
    assert orjson.loads(letter.data or b"{}")["id"] == str(event.id)
    assert await inbox_count(shop, event.id) == 0


async def test_a_reservation_and_the_event_that_releases_it_keep_their_traces(
    events_shop: tuple[Shop, EventNames],
    nats: tuple[Client, JetStreamContext],
    order_service_keys: CredentialSigner,
    exporter: InMemorySpanExporter,
) -> None:
    shop, names = events_shop
    _, js = nats
    lamp = await shop.create(shop.as_user(), stock=5)
    order_id = str(uuid.uuid4())
    reserved = await shop.client.put(
        f"/stock/reservations/{order_id}",
        json={"items": [{"product_id": lamp["id"], "quantity": 1}]},
        headers={"traceparent": TRACEPARENT},
        auth=CallerAuth(order_service_keys),
    )
    assert reserved.status_code == 201
    async with shop.app.state.engine.connect() as connection:
        recorded = (
            await connection.execute(
                text("SELECT traceparent FROM product_outbox WHERE type = :type"),
                {"type": "product.stock_reserved"},
            )
        ).scalar_one()
    assert recorded.split("-")[1] == TRACE_ID  # the relay's publish continues this trace

    other_trace = "0af7651916cd43dd8448eb211c80319c"
    event = Event(
        type="order.cancelled",
        source="order-service",
        subject="orders.cancelled",
        data={"order_id": order_id},
        traceparent=f"00-{other_trace}-b7ad6b7169203331-01",
    )
    await publish(js, names, event, str(event.id))
    await settled(js, shop, names, delivered=1)

    consumed = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert [format(s.context.trace_id, "032x") for s in consumed] == [other_trace]
    assert await stock(shop, lamp["id"]) == 5
