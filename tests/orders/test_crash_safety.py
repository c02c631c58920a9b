"""SIGKILL at the worst moments of a checkout and of a cancellation, then recovery: every
201 order exists once, stock = initial − units of live orders, every release happens
once, nothing is left `reserving` (the sweeper's saga releases orphans)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.orders.conftest import (
    OrderSystem,
    eventually,
    key_headers,
    kill,
    kill_now,
    order_body,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def test_order_service_killed_between_reservation_and_commit_leaves_no_held_stock(
    system: OrderSystem,
) -> None:
    product = system.add_product_service()
    await system.start(product)
    proxy = await system.proxy_to(product)
    order = system.add_order_service(proxy.url)
    await system.start(order)
    ids = await system.create_products([20, 20])
    initial = await system.stocks(ids)
    buyer = system.buyer()
    placed = []
    async with system.client(order) as client:
        for quantity in (1, 2):
            answer = await client.post(
                "/orders", headers=key_headers(buyer), json=order_body([(ids[0], quantity)])
            )
            assert answer.status_code == 201, answer.text
            placed.append(answer.json()["id"])

        # product-service reserves and answers; order-service dies before it reads it.
        proxy.on_response = kill_now(order)
        orphan_key = key_headers(buyer, "orphan")
        with pytest.raises(httpx.TransportError):
            await client.post(
                "/orders", headers=orphan_key, json=order_body([(ids[1], 3), (ids[0], 1)])
            )
    assert proxy.fired.is_set()
    await asyncio.to_thread(order.wait_exit)

    # The orphan is real: stock held for an order that never got past `reserving`.
    rows = await system.order_rows()
    orphans = [o for o, status in rows.items() if status == "reserving"]
    assert len(orphans) == 1
    orphan = orphans[0]
    assert (await system.reservations())[orphan] == "held"
    assert (await system.stocks(ids))[ids[1]] == initial[ids[1]] - 3

    await system.restart(order)

    async def recovered() -> bool:
        reservations = await system.reservations()
        return (
            reservations[orphan] == "released"
            and "reserving" not in (await system.order_rows()).values()
        )

    await eventually(recovered, 60, "the orphan checkout given up and its stock released")
    rows = await system.order_rows()
    assert rows[orphan] == "aborted"
    assert [rows[o] for o in placed] == ["pending_payment", "pending_payment"]
    assert (await system.order_events("aborted")) == {orphan: 1}
    await eventually(
        lambda: _released_once(system, [orphan]), 30, "the orphan's release recorded once"
    )
    await system.assert_consistent(ids, initial)

    # The key was freed with the abandoned checkout: a retry places the order once.
    async with system.client(order) as client:
        retry = await client.post(
            "/orders", headers=orphan_key, json=order_body([(ids[1], 3), (ids[0], 1)])
        )
        assert retry.status_code == 201, retry.text
        again = await client.post(
            "/orders", headers=orphan_key, json=order_body([(ids[1], 3), (ids[0], 1)])
        )
        assert again.content == retry.content
    live = [o for o, s in (await system.order_rows()).items() if s == "pending_payment"]
    assert sorted(live) == sorted([*placed, retry.json()["id"]])
    await system.assert_consistent(ids, initial)


async def test_product_service_killed_mid_reservation_answers_503_and_holds_nothing(
    system: OrderSystem,
) -> None:
    product = system.add_product_service()
    await system.start(product)
    proxy = await system.proxy_to(product)
    order = system.add_order_service(proxy.url)
    await system.start(order)
    ids = await system.create_products([5, 5])
    initial = await system.stocks(ids)

    proxy.on_request = kill_now(product)  # the request passes, then product-service dies
    async with system.client(order) as client:
        answer = await client.post(
            "/orders",
            headers=key_headers(system.buyer()),
            json=order_body([(ids[0], 2), (ids[1], 5)]),
        )
    assert proxy.fired.is_set()
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    await asyncio.to_thread(product.wait_exit)
    rows = await system.order_rows()
    assert list(rows.values()) == ["aborted"]  # nothing placed
    (aborted,) = rows
    assert (await system.order_events("aborted")) == {aborted: 1}

    await system.restart(product)

    async def nothing_held() -> bool:
        return (await system.stocks(ids)) == initial and (await system.reservations()).get(
            aborted
        ) in ("released", None)

    await eventually(nothing_held, 30, "no stock held after the restart")

    # The release is the saga's: order.aborted reached the consumer and left a tombstone
    # (or released what the dead process had committed), so a late reservation is refused.
    async def aborted_consumed() -> bool:
        return (await system.reservations()).get(aborted) == "released"

    await eventually(aborted_consumed, 30, "order.aborted applied by product-service")
    assert (await system.releases_per_order()).get(aborted, 0) <= 1
    await system.assert_consistent(ids, initial)


async def test_processes_killed_while_cancellations_flow_release_each_order_once(
    system: OrderSystem,
) -> None:
    products = [system.add_product_service(), system.add_product_service()]
    await system.start(*products)
    order = system.add_order_service(products[0].url)
    await system.start(order)
    ids = await system.create_products([100, 100])
    initial = await system.stocks(ids)
    count = 24
    buyer = system.buyer()
    async with system.client(order) as client:
        placed = []
        for n in range(count):
            answer = await client.post(
                "/orders",
                headers=key_headers(buyer),
                json=order_body([(ids[n % 2], 1 + n % 3), (ids[(n + 1) % 2], 1)]),
            )
            assert answer.status_code == 201, answer.text
            placed.append(answer.json()["id"])

    failed: list[str] = []

    async def cancel_all() -> None:
        async with system.client(order, timeout=10) as client:
            for n, order_id in enumerate(placed):
                if n == 6:  # the product-service order-service calls, and a consumer
                    await kill(products[0])
                if n == 14:  # order-service: its relay may be between publish and mark
                    await kill(order)
                try:
                    answer = await client.post(f"/orders/{order_id}/cancel", headers=buyer)
                    assert answer.status_code == 200, answer.text
                except httpx.TransportError:
                    failed.append(order_id)
                await asyncio.sleep(0.05)

    await cancel_all()
    assert len(failed) >= count - 14
    await system.start(products[0], order)
    async with system.client(order) as client:
        for order_id in failed:  # the client's retry; a repeated cancel changes nothing
            answer = await client.post(f"/orders/{order_id}/cancel", headers=buyer)
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "cancelled"

    await eventually(lambda: _released_once(system, placed), 60, "every order released")

    async def all_cancellations_consumed() -> bool:
        async with system.product_sql() as sql:
            consumed = await sql.fetchval(
                "SELECT count(*) FROM product_inbox_orders WHERE event_type = 'order.cancelled'"
            )
        return int(consumed) == count

    await eventually(all_cancellations_consumed, 60, "every order.cancelled in the inbox")
    cancelled_events = await system.order_events("cancelled")
    assert cancelled_events == dict.fromkeys(placed, 1)
    assert await system.releases_per_order() == dict.fromkeys(placed, 1)
    assert await system.stocks(ids) == initial
    await system.assert_consistent(ids, initial)


async def _released_once(system: OrderSystem, orders: list[str]) -> bool:
    releases = await system.releases_per_order()
    assert all(releases.get(o, 0) <= 1 for o in orders), releases
    return all(releases.get(o) == 1 for o in orders)
