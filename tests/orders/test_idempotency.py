"""One Idempotency-Key, twenty identical requests at once over two order-service
replicas: one order, one reservation, every answer the same 201 or a 409."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.orders.conftest import OrderSystem, key_headers, order_body

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def test_twenty_concurrent_repeats_over_two_replicas_place_one_order(
    system: OrderSystem,
) -> None:
    products = [system.add_product_service(), system.add_product_service()]
    await system.start(*products)
    orders = [
        system.add_order_service(products[0].url),
        system.add_order_service(products[1].url),
    ]
    await system.start(*orders)
    ids = await system.create_products([10, 10])
    initial = await system.stocks(ids)
    headers = key_headers(system.buyer(), "one-key")
    body = order_body([(ids[0], 2), (ids[1], 1)])
    clients = [system.client(orders[0]), system.client(orders[1])]
    start = asyncio.Event()

    async def send(n: int) -> httpx.Response:
        await start.wait()
        return await clients[n % 2].post("/orders", headers=headers, json=body)

    try:
        tasks = [asyncio.create_task(send(n)) for n in range(20)]
        await asyncio.sleep(0.2)
        start.set()
        answers = await asyncio.gather(*tasks)
        placed = [a for a in answers if a.status_code == 201]
        in_flight = [a for a in answers if a.status_code == 409]
        print(f"\n{len(placed)} × 201, {len(in_flight)} × 409")  # noqa: T201
        assert len(placed) + len(in_flight) == 20, [a.text for a in answers]
        assert placed, "no request placed the order"
        assert {a.content for a in placed} == {placed[0].content}  # byte for byte
        assert {a.headers["location"] for a in placed} == {placed[0].headers["location"]}
        for answer in in_flight:
            assert answer.headers["content-type"] == "application/problem+json"

        # Afterwards every repeat, on either replica, replays the first answer.
        for client in clients:
            again = await client.post("/orders", headers=headers, json=body)
            assert again.status_code == 201 and again.content == placed[0].content
        other = await clients[1].post("/orders", headers=headers, json=order_body([(ids[0], 1)]))
        assert other.status_code == 422
    finally:
        for client in clients:
            await client.aclose()

    order_id = placed[0].json()["id"]
    assert await system.order_rows() == {order_id: "pending_payment"}
    assert await system.reservations() == {order_id: "held"}
    assert await system.stocks(ids) == {ids[0]: initial[ids[0]] - 2, ids[1]: initial[ids[1]] - 1}
    assert await system.order_events("placed") == {order_id: 1}
    await system.assert_consistent(ids, initial)
