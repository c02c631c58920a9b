"""SIGKILL at the two crash points of the events, made exact by a proxy before NATS:

- product-service killed between a consumer's effect and its ack (the ack of
  `order.cancelled` never leaves): the release is committed and JetStream still holds
  the event; after the restart it is redelivered and the inbox drops it.
- order-service's relay killed between publish and mark (the publish of
  `order.cancelled` reaches NATS, the process dies before it can mark the row): after the
  restart the relay publishes it again with the same Nats-Msg-Id and JetStream keeps one.

Either way the stock is returned exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import nats
import pytest

from tests.orders.conftest import (
    OrderSystem,
    Proxy,
    eventually,
    key_headers,
    kill_now,
    order_body,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

DURABLE = "product-service-orders"


async def test_a_consumer_killed_between_its_effect_and_its_ack_releases_once(
    system: OrderSystem,
) -> None:
    nats_proxy = await system.proxy(system.nats.port, marker=b"$JS.ACK.ORDERS.")
    nats_proxy.drop_marked = True
    product = system.add_product_service(NATS_URL=f"nats://127.0.0.1:{nats_proxy.port}")
    await system.start(product)
    http_proxy = await system.proxy_to(product)
    order = system.add_order_service(http_proxy.url)
    await system.start(order)
    ids = await system.create_products([10])
    initial = await system.stocks(ids)
    buyer = system.buyer()
    async with system.client(order) as client:
        placed = await client.post(
            "/orders", headers=key_headers(buyer), json=order_body([(ids[0], 4)])
        )
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        await eventually(lambda: _consumed(system, "order.placed"), 30, "order.placed consumed")
        await asyncio.sleep(1)  # its ack has left too

        # order-service cannot reach product-service now: the event alone releases.
        http_proxy.refuse = True
        nats_proxy.on_request = kill_now(product)
        cancelled = await client.post(f"/orders/{order_id}/cancel", headers=buyer)
        assert cancelled.status_code == 200, cancelled.text

    await eventually(_fired(nats_proxy), 30, "product-service killed as its ack left")
    await asyncio.to_thread(product.wait_exit)
    # The effect was committed before the ack: released once, and the event unacked.
    assert (await system.reservations())[order_id] == "released"
    assert await system.releases_per_order() == {order_id: 1}
    assert await system.stocks(ids) == initial
    assert await _consumed(system, "order.cancelled")
    assert await _consumer_state(system) == (1, 0)  # JetStream still waits for the ack

    await system.restart(product)

    async def redelivered_and_acked() -> bool:
        pending, redelivered = await _consumer_state(system)
        return pending == 0 and redelivered >= 1

    # A timeout, not a speed claim: the server redelivers after the consumer's ack_wait.
    await eventually(redelivered_and_acked, 90, "order.cancelled redelivered and acked")
    assert await system.releases_per_order() == {order_id: 1}
    assert await system.stocks(ids) == initial
    async with system.product_sql() as sql:
        rows = await sql.fetchval(
            "SELECT count(*) FROM product_inbox_orders WHERE event_type = 'order.cancelled'"
        )
    assert rows == 1
    await system.assert_consistent(ids, initial)


async def test_a_relay_killed_between_publish_and_mark_publishes_the_event_once(
    system: OrderSystem,
) -> None:
    product = system.add_product_service()
    await system.start(product)
    nats_proxy = await system.proxy(system.nats.port, marker=b"PUB orders.cancelled ")
    order = system.add_order_service(product.url, NATS_URL=f"nats://127.0.0.1:{nats_proxy.port}")
    await system.start(order)
    ids = await system.create_products([10])
    initial = await system.stocks(ids)
    buyer = system.buyer()
    async with system.client(order) as client:
        placed = await client.post(
            "/orders", headers=key_headers(buyer), json=order_body([(ids[0], 3)])
        )
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        await eventually(lambda: _consumed(system, "order.placed"), 30, "order.placed consumed")

        nats_proxy.on_request = kill_now(order)  # forwards the publish, then kills
        try:
            answer = await client.post(f"/orders/{order_id}/cancel", headers=buyer)
            assert answer.status_code == 200, answer.text
        except httpx.TransportError:
            pass  # killed before it answered: the buyer retries below
    await eventually(_fired(nats_proxy), 30, "order-service killed after the publish")
    await asyncio.to_thread(order.wait_exit)
    assert await _unpublished(system, "order.cancelled") == 1  # published, not marked
    await eventually(lambda: _consumed(system, "order.cancelled"), 30, "the event consumed")

    await system.restart(order)
    async with system.client(order) as client:
        again = await client.post(f"/orders/{order_id}/cancel", headers=buyer)
        assert again.status_code == 200 and again.json()["status"] == "cancelled"

    async def marked() -> bool:
        return await _unpublished(system, "order.cancelled") == 0

    await eventually(marked, 30, "the relay published and marked it after the restart")
    assert await _stream_messages(system, "orders.cancelled") == 1  # deduplicated by id
    assert await system.order_events("cancelled") == {order_id: 1}
    await eventually(lambda: _released(system, order_id), 30, "the stock returned")
    await asyncio.sleep(1)  # anything late would show now
    assert await system.releases_per_order() == {order_id: 1}
    assert await system.stocks(ids) == initial
    await system.assert_consistent(ids, initial)


async def _unpublished(system: OrderSystem, event_type: str) -> int:
    async with system.order_sql() as sql:
        count = await sql.fetchval(
            "SELECT count(*) FROM order_outbox WHERE type = $1 AND published_at IS NULL",
            event_type,
        )
    return int(count)


async def _stream_messages(system: OrderSystem, subject: str) -> int:
    client = await nats.connect(system.nats.url)
    try:
        info = await client.jetstream().stream_info("ORDERS", subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))
    finally:
        await client.close()


async def _released(system: OrderSystem, order_id: str) -> bool:
    return (await system.releases_per_order()).get(order_id) == 1


def _fired(proxy: Proxy) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return proxy.fired.is_set()

    return check


async def _consumed(system: OrderSystem, event_type: str) -> bool:
    async with system.product_sql() as sql:
        count = await sql.fetchval(
            "SELECT count(*) FROM product_inbox_orders WHERE event_type = $1", event_type
        )
    return int(count) >= 1


async def _consumer_state(system: OrderSystem) -> tuple[int, int]:
    """(acks pending, redeliveries) of product-service's durable consumer of ORDERS: its
    deliveries beyond the stream's messages it reached are redeliveries."""
    client = await nats.connect(system.nats.url)
    try:
        info = await client.jetstream().consumer_info("ORDERS", DURABLE)
        delivered = info.delivered
        assert delivered is not None
        extra = (delivered.consumer_seq or 0) - (delivered.stream_seq or 0)
        return info.num_ack_pending or 0, extra
    finally:
        await client.close()
