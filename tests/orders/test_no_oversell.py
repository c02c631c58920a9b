"""50 buyers at once for the last 10 units of each of three products, through two
order-services each calling its own product-service, all on one PostgreSQL."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from tests.orders.conftest import OrderSystem, key_headers, order_body

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

BUYERS = 50
UNITS = 10


async def test_fifty_concurrent_buyers_never_get_more_than_the_last_ten_units(
    system: OrderSystem,
) -> None:
    products = [system.add_product_service(), system.add_product_service()]
    await system.start(*products)
    orders = [
        system.add_order_service(products[0].url),
        system.add_order_service(products[1].url),
    ]
    await system.start(*orders)
    ids = await system.create_products([UNITS] * 3)
    initial = await system.stocks(ids)
    rng = random.Random(14)
    wanted = []
    for _ in range(BUYERS):
        chosen = rng.sample(ids, rng.choice((2, 3)))  # several products, lines in any order
        wanted.append([(product, rng.choice((1, 2))) for product in chosen])

    stop = asyncio.Event()
    lowest: dict[str, int] = dict(initial)

    async def watch_stock() -> None:
        while not stop.is_set():
            for product, stock in (await system.stocks(ids)).items():
                lowest[product] = min(lowest[product], stock)
            await asyncio.sleep(0.05)

    clients = [system.client(orders[0]), system.client(orders[1])]
    watcher = asyncio.create_task(watch_stock())
    try:
        start = asyncio.Event()

        async def buy(n: int) -> httpx.Response:
            await start.wait()
            return await clients[n % 2].post(
                "/orders", headers=key_headers(system.buyer()), json=order_body(wanted[n])
            )

        tasks = [asyncio.create_task(buy(n)) for n in range(BUYERS)]
        await asyncio.sleep(0.2)
        start.set()
        answers = await asyncio.gather(*tasks)
    finally:
        stop.set()
        await watcher
        for client in clients:
            await client.aclose()

    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {201, 409}, [a.text for a in answers if a.status_code not in (201, 409)]
    sold = dict.fromkeys(ids, 0)
    placed: set[str] = set()
    for answer, lines in zip(answers, wanted, strict=True):
        if answer.status_code == 201:
            placed.add(answer.json()["id"])
            for product, quantity in lines:
                sold[product] += quantity
        else:
            fields = [e["field"] for e in answer.json()["errors"]]
            assert fields and all(f.endswith(".quantity") for f in fields), answer.text
    final = await system.stocks(ids)
    print(  # noqa: T201
        f"\n{statuses.count(201)} placed, {statuses.count(409)} refused; sold {sold};"
        f" lowest stock seen {lowest}"
    )
    assert statuses.count(201) > 0 and statuses.count(409) > 0
    for product in ids:
        assert sold[product] <= UNITS
        assert lowest[product] >= 0 and final[product] >= 0
        # Every 409 left stock untouched: what is gone is exactly what the 201s bought.
        assert final[product] == initial[product] - sold[product]
    # The database agrees: the held reservations are exactly the placed orders'.
    reservations = await system.reservations()
    assert {o for o, status in reservations.items() if status == "held"} == placed
    rows = await system.order_rows()
    assert {o for o, status in rows.items() if status == "pending_payment"} == placed
    await system.assert_consistent(ids, initial)
