"""Unpaid orders expire after ORDER_PAYMENT_TIMEOUT (3 s here) and return their stock:
also when order-service was stopped over the deadline, and once with two replicas."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime

import pytest

from tests.orders.conftest import OrderSystem, eventually, key_headers, order_body

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

TIMEOUT = {"ORDER_PAYMENT_TIMEOUT": "3"}


async def test_an_order_expires_after_a_restart_that_spans_its_deadline(
    system: OrderSystem,
) -> None:
    product = system.add_product_service()
    await system.start(product)
    order = system.add_order_service(product.url, **TIMEOUT)
    await system.start(order)
    ids = await system.create_products([5])
    initial = await system.stocks(ids)
    buyer = system.buyer()
    async with system.client(order) as client:
        placed = await client.post(
            "/orders", headers=key_headers(buyer), json=order_body([(ids[0], 2)])
        )
    assert placed.status_code == 201, placed.text
    first = placed.json()
    order.signal(signal.SIGTERM)
    # A clean stop (uvicorn re-raises the signal once shut down: -15).
    assert await asyncio.to_thread(order.wait_exit) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in order.log.read_text()
    expires_at = datetime.fromisoformat(first["expires_at"].replace("Z", "+00:00"))
    await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 1.5)
    # Past the deadline with no order-service running: nothing expired it yet.
    assert (await system.order_rows())[first["id"]] == "pending_payment"
    assert (await system.stocks(ids))[ids[0]] == initial[ids[0]] - 2

    await system.restart(order)

    async def expired() -> bool:
        return (await system.order_rows())[first["id"]] == "expired"

    await eventually(expired, 30, "the order expired after the restart")
    await eventually(lambda: _stock_is(system, ids[0], initial[ids[0]]), 30, "its stock returned")
    async with system.client(order) as client:
        shown = await client.get(f"/orders/{first['id']}", headers=buyer)
        assert shown.json()["status"] == "expired"
        # And one placed while the service runs expires too.
        second = await client.post(
            "/orders", headers=key_headers(buyer), json=order_body([(ids[0], 5)])
        )
        assert second.status_code == 201, second.text
    await eventually(
        lambda: _stock_is(system, ids[0], initial[ids[0]]), 30, "the second order's stock"
    )
    assert (await system.order_rows())[second.json()["id"]] == "expired"
    expired_ids = {first["id"], second.json()["id"]}
    assert await system.order_events("expired") == dict.fromkeys(expired_ids, 1)
    await eventually(
        lambda: _released(system, expired_ids), 30, "each release recorded by product-service"
    )
    assert await system.releases_per_order() == dict.fromkeys(expired_ids, 1)
    await system.assert_consistent(ids, initial)


async def test_with_two_replicas_each_order_expires_once(system: OrderSystem) -> None:
    products = [system.add_product_service(), system.add_product_service()]
    await system.start(*products)
    fast = {**TIMEOUT, "SWEEP_INTERVAL_SECONDS": "0.2"}  # both replicas sweep all the time
    orders = [
        system.add_order_service(products[0].url, **fast),
        system.add_order_service(products[1].url, **fast),
    ]
    await system.start(*orders)
    ids = await system.create_products([50, 50])
    initial = await system.stocks(ids)
    placed = []
    clients = [system.client(orders[0]), system.client(orders[1])]
    try:
        answers = await asyncio.gather(
            *(
                clients[n % 2].post(
                    "/orders",
                    headers=key_headers(system.buyer()),
                    json=order_body([(ids[n % 2], 1), (ids[(n + 1) % 2], 2)]),
                )
                for n in range(16)
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    for answer in answers:
        assert answer.status_code == 201, answer.text
        placed.append(answer.json()["id"])

    async def all_expired() -> bool:
        rows = await system.order_rows()
        return all(rows[o] == "expired" for o in placed)

    await eventually(all_expired, 40, "every order expired")
    await eventually(lambda: _released(system, set(placed)), 30, "every release recorded")
    await asyncio.sleep(1.5)  # several more sweeps of both replicas: still once
    assert await system.order_events("expired") == dict.fromkeys(placed, 1)
    assert await system.releases_per_order() == dict.fromkeys(placed, 1)
    assert await system.stocks(ids) == initial
    await system.assert_consistent(ids, initial)


async def _stock_is(system: OrderSystem, product: str, expected: int) -> bool:
    return (await system.stocks([product]))[product] == expected


async def _released(system: OrderSystem, orders: set[str]) -> bool:
    releases = await system.releases_per_order()
    return all(releases.get(o) == 1 for o in orders)
