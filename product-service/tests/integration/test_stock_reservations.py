"""/stock/reservations: all or nothing, once per order, released exactly once; SQLite and
PostgreSQL, the app in-process, order-service's credential minted per request."""

from __future__ import annotations

import asyncio
import random
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from shop_common.credential import CredentialSigner
from shop_common.testing import GatewayKeys
from testsupport.product import CallerAuth, Shop, running_shop

pytestmark = pytest.mark.anyio

MAX_STOCK = 2_147_483_647


@pytest.fixture
def order_auth(order_service_keys: CredentialSigner) -> CallerAuth:
    return CallerAuth(order_service_keys)


def url(order_id: str) -> str:
    return f"/stock/reservations/{order_id}"


async def reserve(
    shop: Shop, auth: CallerAuth, order_id: str, items: list[tuple[str, int]]
) -> httpx.Response:
    body = {"items": [{"product_id": p, "quantity": q} for p, q in items]}
    return await shop.client.put(url(order_id), json=body, auth=auth)


async def release(shop: Shop, auth: CallerAuth, order_id: str) -> httpx.Response:
    return await shop.client.delete(url(order_id), auth=auth)


async def product(shop: Shop, product_id: str) -> dict[str, Any]:
    response = await shop.client.get(f"/products/{product_id}", headers=shop.anonymous())
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def stocks(shop: Shop, *product_ids: str) -> list[int]:
    return [(await product(shop, p))["stock"] for p in product_ids]


async def outbox(shop: Shop, event_type: str, key: str, value: str) -> list[dict[str, Any]]:
    """The data of the outbox events of this type whose data[key] is value."""
    async with shop.app.state.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT data FROM product_outbox WHERE type = :type ORDER BY position"),
            {"type": event_type},
        )
        found = [orjson.loads(row.data) for row in rows]
    return [data for data in found if data.get(key) == value]


async def reservation_status(shop: Shop, order_id: str) -> str | None:
    async with shop.app.state.engine.connect() as connection:
        status: str | None = (
            await connection.execute(
                text("SELECT status FROM stock_reservation WHERE order_id = :id"),
                {"id": uuid.UUID(order_id).hex if _sqlite(shop) else uuid.UUID(order_id)},
            )
        ).scalar_one_or_none()
    return status


def _sqlite(shop: Shop) -> bool:
    return bool(shop.app.state.engine.dialect.name == "sqlite")


async def test_a_reservation_takes_the_stock_and_answers_the_catalog_snapshot(
    shop: Shop, order_auth: CallerAuth
) -> None:
    owner = shop.as_user()
    lamp = await shop.create(owner, stock=5, price=19.99, currency="EUR")
    desk = await shop.create(owner, name="Desk", stock=3, price=250, sku=None)
    order_id = str(uuid.uuid4())

    response = await reserve(shop, order_auth, order_id, [(desk["id"], 3), (lamp["id"], 2)])

    assert response.status_code == 201, response.text
    assert response.json() == {
        "order_id": order_id,
        "status": "held",
        "items": [
            {
                "product_id": desk["id"],
                "name": "Desk",
                "sku": None,
                "price": 250,
                "currency": "USD",
                "quantity": 3,
            },
            {
                "product_id": lamp["id"],
                "name": "Lamp",
                "sku": lamp["sku"],
                "price": 19.99,
                "currency": "EUR",
                "quantity": 2,
            },
        ],
    }
    assert b'"price":19.99' in response.content  # an exact JSON number, as products show it
    after = await product(shop, lamp["id"])
    assert (after["stock"], after["version"]) == (3, lamp["version"] + 1)
    assert after["updated_at"] > lamp["updated_at"]
    assert await stocks(shop, desk["id"]) == [0]
    assert await outbox(shop, "product.stock_reserved", "order_id", order_id) == [
        {
            "order_id": order_id,
            "items": [
                {"product_id": desk["id"], "quantity": 3},
                {"product_id": lamp["id"], "quantity": 2},
            ],
        }
    ]


async def test_repeating_the_same_reservation_answers_200_and_changes_nothing(
    shop: Shop, order_auth: CallerAuth
) -> None:
    lamp = await shop.create(shop.as_user(), stock=5)
    order_id = str(uuid.uuid4())
    first = await reserve(shop, order_auth, order_id, [(lamp["id"], 2)])
    assert first.status_code == 201
    # Meanwhile the catalog changes: the reservation keeps what it was given.
    patched = await shop.client.patch(
        f"/products/{lamp['id']}", json={"price": 5}, headers=shop.as_admin()
    )
    assert patched.status_code == 200

    again = await reserve(shop, order_auth, order_id, [(lamp["id"], 2)])

    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert await stocks(shop, lamp["id"]) == [3]
    assert len(await outbox(shop, "product.stock_reserved", "order_id", order_id)) == 1


async def test_the_same_order_with_other_items_gets_409_and_changes_nothing(
    shop: Shop, order_auth: CallerAuth
) -> None:
    lamp = await shop.create(shop.as_user(), stock=5)
    desk = await shop.create(shop.as_user(), stock=5)
    order_id = str(uuid.uuid4())
    assert (await reserve(shop, order_auth, order_id, [(lamp["id"], 2)])).status_code == 201

    for items in ([(lamp["id"], 3)], [(lamp["id"], 2), (desk["id"], 1)], [(desk["id"], 2)]):
        response = await reserve(shop, order_auth, order_id, items)
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"

    assert await stocks(shop, lamp["id"], desk["id"]) == [3, 5]


async def test_unknown_products_get_422_naming_each_line_and_nothing_changes(
    shop: Shop, order_auth: CallerAuth
) -> None:
    lamp = await shop.create(shop.as_user(), stock=5)
    deleted = await shop.create(shop.as_user(), stock=5)
    gone = await shop.client.delete(f"/products/{deleted['id']}", headers=shop.as_admin())
    assert gone.status_code == 204
    order_id = str(uuid.uuid4())
    items = [(lamp["id"], 9), (str(uuid.uuid4()), 1), (deleted["id"], 1)]

    response = await reserve(shop, order_auth, order_id, items)

    # The lamp is short too, but 422 wins over 409.
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [
        "items.1.product_id",
        "items.2.product_id",
    ]
    assert await stocks(shop, lamp["id"]) == [5]
    assert await reservation_status(shop, order_id) is None  # the order id is not claimed
    assert (await reserve(shop, order_auth, order_id, [(lamp["id"], 1)])).status_code == 201


async def test_short_lines_get_409_naming_every_short_line_and_nothing_changes(
    shop: Shop, order_auth: CallerAuth
) -> None:
    owner = shop.as_user()
    plenty, few, none = [await shop.create(owner, stock=s) for s in (100, 2, 0)]
    before = [await product(shop, p["id"]) for p in (plenty, few, none)]
    order_id = str(uuid.uuid4())

    response = await reserve(
        shop, order_auth, order_id, [(none["id"], 1), (plenty["id"], 10), (few["id"], 3)]
    )

    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [
        "items.0.quantity",
        "items.2.quantity",
    ]
    assert [await product(shop, p["id"]) for p in (plenty, few, none)] == before
    assert await outbox(shop, "product.stock_reserved", "order_id", order_id) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"items": []}, "items", id="no-lines"),
        pytest.param({"items": [{"product_id": "P", "quantity": 1}] * 51}, "items", id="51-lines"),
        pytest.param({"items": [{"product_id": "P", "quantity": 0}]}, "items.0.quantity", id="q0"),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 1001}]}, "items.0.quantity", id="q1001"
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": "1"}]}, "items.0.quantity", id="q-string"
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 1.5}]}, "items.0.quantity", id="q-fraction"
        ),
        pytest.param(
            {"items": [{"product_id": "nope", "quantity": 1}]}, "items.0.product_id", id="bad-id"
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 1, "price": 1}]},
            "items.0.price",
            id="extra-line-field",
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 1}], "note": "x"}, "note", id="extra-field"
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 1}, {"product_id": "P", "quantity": 2}]},
            "items.1.product_id",
            id="repeated-product",
        ),
    ],
)
async def test_an_invalid_reservation_gets_422_and_changes_nothing(
    shop: Shop, order_auth: CallerAuth, body: dict[str, Any], field: str
) -> None:
    lamp = await shop.create(shop.as_user(), stock=5)
    raw = orjson.dumps(body).replace(b'"P"', orjson.dumps(lamp["id"]))
    order_id = str(uuid.uuid4())

    response = await shop.client.put(
        url(order_id), content=raw, headers={"content-type": "application/json"}, auth=order_auth
    )

    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert await stocks(shop, lamp["id"]) == [5]
    assert await reservation_status(shop, order_id) is None


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("order_id", ["nope", "1234", str(uuid.uuid4()) + "0"])
async def test_a_malformed_order_id_gets_404(
    shop: Shop, order_auth: CallerAuth, method: str, order_id: str
) -> None:
    lamp = await shop.create(shop.as_user(), stock=5)
    body = {"items": [{"product_id": lamp["id"], "quantity": 1}]} if method == "PUT" else None
    response = await shop.client.request(method, url(order_id), json=body, auth=order_auth)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_release_returns_the_stock_exactly_once(shop: Shop, order_auth: CallerAuth) -> None:
    lamp = await shop.create(shop.as_user(), stock=5)
    desk = await shop.create(shop.as_user(), stock=5)
    order_id = str(uuid.uuid4())
    await reserve(shop, order_auth, order_id, [(lamp["id"], 2), (desk["id"], 5)])

    answers = [(await release(shop, order_auth, order_id)).status_code for _ in range(3)]

    assert answers == [204, 204, 204]
    assert await stocks(shop, lamp["id"], desk["id"]) == [5, 5]
    assert await reservation_status(shop, order_id) == "released"
    assert await outbox(shop, "product.stock_released", "order_id", order_id) == [
        {
            "order_id": order_id,
            "items": [
                {"product_id": lamp["id"], "quantity": 2},
                {"product_id": desk["id"], "quantity": 5},
            ],
        }
    ]


async def test_concurrent_releases_return_the_stock_once(
    shop: Shop, order_auth: CallerAuth
) -> None:
    lamp = await shop.create(shop.as_user(), stock=5)
    order_id = str(uuid.uuid4())
    await reserve(shop, order_auth, order_id, [(lamp["id"], 4)])

    answers = await asyncio.gather(*(release(shop, order_auth, order_id) for _ in range(10)))

    assert {a.status_code for a in answers} == {204}
    assert await stocks(shop, lamp["id"]) == [5]
    assert len(await outbox(shop, "product.stock_released", "order_id", order_id)) == 1


async def test_a_release_skips_deleted_products_and_caps_the_stock(
    shop: Shop, order_auth: CallerAuth
) -> None:
    lamp = await shop.create(shop.as_user(), stock=5)
    doomed = await shop.create(shop.as_user(), stock=5)
    order_id = str(uuid.uuid4())
    await reserve(shop, order_auth, order_id, [(doomed["id"], 1), (lamp["id"], 3)])
    await shop.client.delete(f"/products/{doomed['id']}", headers=shop.as_admin())
    raised = await shop.client.patch(
        f"/products/{lamp['id']}", json={"stock": MAX_STOCK - 1}, headers=shop.as_admin()
    )
    assert raised.status_code == 200

    assert (await release(shop, order_auth, order_id)).status_code == 204

    assert await stocks(shop, lamp["id"]) == [MAX_STOCK]
    assert await outbox(shop, "product.stock_released", "order_id", order_id) == [
        {"order_id": order_id, "items": [{"product_id": lamp["id"], "quantity": 3}]}
    ]


async def test_a_reservation_after_its_release_gets_410(shop: Shop, order_auth: CallerAuth) -> None:
    lamp = await shop.create(shop.as_user(), stock=5)
    order_id = str(uuid.uuid4())
    await reserve(shop, order_auth, order_id, [(lamp["id"], 2)])
    await release(shop, order_auth, order_id)

    for items in ([(lamp["id"], 2)], [(lamp["id"], 1)]):
        response = await reserve(shop, order_auth, order_id, items)
        assert response.status_code == 410, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert await stocks(shop, lamp["id"]) == [5]


async def test_releasing_an_unknown_order_leaves_a_tombstone_so_a_late_reservation_gets_410(
    shop: Shop, order_auth: CallerAuth
) -> None:
    lamp = await shop.create(shop.as_user(), stock=5)
    order_id = str(uuid.uuid4())

    assert (await release(shop, order_auth, order_id)).status_code == 204
    late = await reserve(shop, order_auth, order_id, [(lamp["id"], 2)])

    assert late.status_code == 410, late.text
    assert await stocks(shop, lamp["id"]) == [5]
    assert await reservation_status(shop, order_id) == "released"
    assert await outbox(shop, "product.stock_released", "order_id", order_id) == []


async def test_identical_reservations_racing_reserve_once_and_all_get_the_same_answer(
    shop: Shop, order_auth: CallerAuth
) -> None:
    lamp = await shop.create(shop.as_user(), stock=50)
    desk = await shop.create(shop.as_user(), stock=50)
    order_id = str(uuid.uuid4())
    items = [(lamp["id"], 3), (desk["id"], 2)]

    answers = await asyncio.gather(*(reserve(shop, order_auth, order_id, items) for _ in range(10)))

    assert sorted(a.status_code for a in answers) == [200] * 9 + [201]
    assert len({a.content for a in answers}) == 1
    assert await stocks(shop, lamp["id"], desk["id"]) == [47, 48]


async def test_a_reservation_racing_its_release_never_holds_stock_afterwards(
    shop: Shop, order_auth: CallerAuth
) -> None:
    lamp = await shop.create(shop.as_user(), stock=1000)
    outcomes = set()
    for _ in range(10):
        order_id = str(uuid.uuid4())
        put, delete = await asyncio.gather(
            reserve(shop, order_auth, order_id, [(lamp["id"], 1)]),
            release(shop, order_auth, order_id),
        )
        assert put.status_code in (201, 410), put.text
        assert delete.status_code == 204
        outcomes.add(put.status_code)
        assert await reservation_status(shop, order_id) == "released"
        assert await stocks(shop, lamp["id"]) == [1000]


async def test_no_oversell_when_fifty_orders_race_for_the_last_ten_units(
    database_url: str, gateway_keys: GatewayKeys, data_dir: Path, order_auth: CallerAuth
) -> None:
    """Two instances of the app (two connection pools) on one database, as in production;
    each request waits for a pooled connection rather than answering 503."""
    async with (
        running_shop(database_url, gateway_keys, data_dir, database_pool_timeout_seconds=60) as a,
        running_shop(database_url, gateway_keys, data_dir, database_pool_timeout_seconds=60) as b,
    ):
        owner = a.as_user()
        products = [(await a.create(owner, stock=10))["id"] for _ in range(3)]
        orders = {}
        rng = random.Random(14)
        for _ in range(50):
            lines = [(p, rng.randint(1, 3)) for p in rng.sample(products, rng.randint(2, 3))]
            orders[str(uuid.uuid4())] = lines  # several products, lines in random order

        answers = await asyncio.gather(
            *(
                reserve((a, b)[n % 2], order_auth, order_id, lines)
                for n, (order_id, lines) in enumerate(orders.items())
            )
        )

        reserved = dict.fromkeys(products, 0)
        for (order_id, lines), answer in zip(orders.items(), answers, strict=True):
            assert answer.status_code in (201, 409), answer.text
            if answer.status_code == 201:
                for product_id, quantity in lines:
                    reserved[product_id] += quantity
            else:
                assert await reservation_status(a, order_id) is None
        assert any(answer.status_code == 201 for answer in answers)
        assert any(answer.status_code == 409 for answer in answers)
        final = await stocks(b, *products)
        for product_id, stock in zip(products, final, strict=True):
            assert 0 <= stock
            assert reserved[product_id] <= 10
            # Only the 201s took units: every 409 left the stock as it was.
            assert stock == 10 - reserved[product_id]
