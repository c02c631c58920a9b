"""The contract's Orders section, row by row, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.anyio


async def test_placing_an_order_reserves_stock_and_answers_201(orders: Any) -> None:
    catalog = orders.catalog
    lamp, desk = catalog.add(price="19.99", stock=10), catalog.add(price="120", stock=3)
    buyer_id = str(uuid.uuid4())
    response = await orders.place(
        orders.as_user(buyer_id), [(lamp, 3), (desk, 1)], note="Ring twice."
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/orders/{order['id']}"
    assert response.headers["etag"] == f'"{uuid.UUID(order["id"]).hex}-1"'
    assert order["status"] == "pending_payment"
    assert order["user_id"] == buyer_id
    assert order["currency"] == "USD"
    assert order["total"] == 179.97
    assert order["note"] == "Ring twice."
    assert order["version"] == 1 and order["number"] >= 1
    assert [item["line_total"] for item in order["items"]] == [59.97, 120]
    assert order["items"][0]["unit_price"] == 19.99
    assert order["items"][0]["name"].startswith("Lamp")
    assert order["paid_at"] is None and order["expires_at"] > order["created_at"]
    assert catalog.stock(lamp) == 7 and catalog.stock(desk) == 2


async def test_order_numbers_increase_in_placing_order(orders: Any) -> None:
    lamp = orders.catalog.add(stock=10)
    buyer = orders.as_user()
    first = await orders.placed(buyer, [(lamp, 1)])
    second = await orders.placed(buyer, [(lamp, 1)])
    assert second["number"] > first["number"]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("has space", id="space"),
        pytest.param("k" * 256, id="too-long"),
        pytest.param("cl\u00e9".encode("latin-1"), id="not-ascii"),
    ],
)
async def test_a_missing_or_malformed_idempotency_key_is_400(
    orders: Any, key: str | bytes | None
) -> None:
    lamp = orders.catalog.add()
    headers = orders.as_user()
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"items": [{"product_id": lamp, "quantity": 1}]}
    response = await orders.client.post("/orders", json=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert orders.catalog.stock(lamp) == 10


async def test_the_key_is_checked_before_the_body(orders: Any) -> None:
    response = await orders.client.post("/orders", json={"items": []}, headers=orders.as_user())
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"items": []}, "items", id="no-lines"),
        pytest.param({}, "items", id="no-items"),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 0}]}, "items.0.quantity", id="zero"
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 1001}]}, "items.0.quantity", id="too-many"
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 1.5}]}, "items.0.quantity", id="fraction"
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": "2"}]}, "items.0.quantity", id="string"
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": True}]}, "items.0.quantity", id="boolean"
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 1, "unit_price": 0.01}]},
            "items.0.unit_price",
            id="client-price",
        ),
        pytest.param(
            {"items": [{"product_id": "not-a-uuid", "quantity": 1}]},
            "items.0.product_id",
            id="bad-product-id",
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 1}], "note": "x" * 501},
            "note",
            id="long-note",
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 1}], "note": "a\u0007b"},
            "note",
            id="control-in-note",
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 1}], "user_id": str(uuid.uuid4())},
            "user_id",
            id="extra-field",
        ),
        pytest.param(
            {"items": [{"product_id": "P", "quantity": 1}, {"product_id": "P", "quantity": 2}]},
            "items.1.product_id",
            id="repeated-product",
        ),
    ],
)
async def test_an_invalid_body_is_422_and_reserves_nothing(
    orders: Any, body: dict[str, Any], field: str
) -> None:
    lamp = orders.catalog.add()
    for line in body.get("items", []):  # the table's placeholder, made a real product
        if line.get("product_id") == "P":
            line["product_id"] = lamp
    headers = {**orders.as_user(), "Idempotency-Key": uuid.uuid4().hex}
    response = await orders.client.post("/orders", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    assert orders.catalog.stock(lamp) == 10
    assert not orders.catalog.calls


async def test_fifty_lines_are_allowed_and_fifty_one_are_not(orders: Any) -> None:
    products = [orders.catalog.add() for _ in range(51)]
    buyer = orders.as_user()
    assert (await orders.place(buyer, [(p, 1) for p in products[:50]])).status_code == 201
    assert (await orders.place(buyer, [(p, 1) for p in products])).status_code == 422


async def test_a_product_that_does_not_exist_is_422_on_its_line(orders: Any) -> None:
    lamp = orders.catalog.add()
    response = await orders.place(orders.as_user(), [(lamp, 1), (str(uuid.uuid4()), 1)])
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["items.1.product_id"]
    assert orders.catalog.stock(lamp) == 10


async def test_short_stock_is_409_per_short_line_and_changes_nothing(orders: Any) -> None:
    catalog = orders.catalog
    lamp, desk, chair = catalog.add(stock=5), catalog.add(stock=1), catalog.add(stock=0)
    response = await orders.place(orders.as_user(), [(lamp, 5), (desk, 2), (chair, 1)])
    assert response.status_code == 409
    assert [e["field"] for e in response.json()["errors"]] == [
        "items.1.quantity",
        "items.2.quantity",
    ]
    assert (catalog.stock(lamp), catalog.stock(desk), catalog.stock(chair)) == (5, 1, 0)
    listed = await orders.client.get("/orders", headers=orders.as_admin())
    assert all(o["items"][0]["product_id"] != lamp for o in listed.json()["items"])


async def test_lines_in_several_currencies_are_422_and_release_the_stock(orders: Any) -> None:
    catalog = orders.catalog
    dollars, euros = catalog.add(currency="USD"), catalog.add(currency="EUR")
    response = await orders.place(orders.as_user(), [(dollars, 2), (euros, 1)])
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["items.1.product_id"]
    assert (catalog.stock(dollars), catalog.stock(euros)) == (10, 10)


async def test_the_same_key_and_body_replays_the_first_answer(orders: Any) -> None:
    lamp = orders.catalog.add(stock=10)
    headers = {**orders.as_user(), "Idempotency-Key": "checkout-1"}
    body = {"items": [{"product_id": lamp, "quantity": 2}]}
    first = await orders.client.post("/orders", json=body, headers=headers)
    # The same body spelled otherwise: other spacing, key order, 2.0 for 2.
    same = f' {{ "items" : [{{"quantity": 2.0, "product_id": "{lamp}"}}]}}'
    again = await orders.client.post(
        "/orders", content=same, headers={**headers, "content-type": "application/json"}
    )
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["location"] == first.headers["location"]
    assert orders.catalog.stock(lamp) == 8


async def test_a_refusal_is_replayed_too(orders: Any) -> None:
    lamp = orders.catalog.add(stock=1)
    headers = {**orders.as_user(), "Idempotency-Key": "checkout-short"}
    body = {"items": [{"product_id": lamp, "quantity": 2}]}
    first = await orders.client.post("/orders", json=body, headers=headers)
    orders.catalog.products[lamp]["stock"] = 5
    again = await orders.client.post("/orders", json=body, headers=headers)
    assert first.status_code == again.status_code == 409
    assert again.content == first.content


async def test_the_same_key_with_another_body_is_422(orders: Any) -> None:
    lamp = orders.catalog.add(stock=10)
    headers = {**orders.as_user(), "Idempotency-Key": "checkout-2"}
    first = await orders.client.post(
        "/orders", json={"items": [{"product_id": lamp, "quantity": 1}]}, headers=headers
    )
    other = await orders.client.post(
        "/orders", json={"items": [{"product_id": lamp, "quantity": 3}]}, headers=headers
    )
    assert first.status_code == 201 and other.status_code == 422
    assert orders.catalog.stock(lamp) == 9


async def test_keys_are_scoped_to_the_user(orders: Any) -> None:
    lamp = orders.catalog.add(stock=10)
    body = {"items": [{"product_id": lamp, "quantity": 1}]}
    one = await orders.client.post(
        "/orders", json=body, headers={**orders.as_user(), "Idempotency-Key": "shared"}
    )
    two = await orders.client.post(
        "/orders", json=body, headers={**orders.as_user(), "Idempotency-Key": "shared"}
    )
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] != two.json()["id"]


async def test_twenty_concurrent_repeats_place_one_order(orders: Any) -> None:
    lamp = orders.catalog.add(stock=100)
    headers = {**orders.as_user(), "Idempotency-Key": f"burst-{uuid.uuid4().hex}"}
    body = {"items": [{"product_id": lamp, "quantity": 1}]}
    answers = await asyncio.gather(
        *(orders.client.post("/orders", json=body, headers=headers) for _ in range(20))
    )
    statuses = sorted({answer.status_code for answer in answers})
    assert set(statuses) <= {201, 409}, statuses
    created = {answer.content for answer in answers if answer.status_code == 201}
    assert len(created) == 1
    assert orders.catalog.stock(lamp) == 99
    assert sum(1 for call in orders.catalog.calls if call[0] == "PUT") == 1


async def test_a_buyer_sees_their_order_and_nobody_elses(orders: Any) -> None:
    lamp = orders.catalog.add()
    buyer_id = str(uuid.uuid4())
    order = await orders.placed(orders.as_user(buyer_id), [(lamp, 1)])
    path = f"/orders/{order['id']}"
    mine = await orders.client.get(path, headers=orders.as_user(buyer_id))
    assert mine.status_code == 200 and mine.json() == order
    assert mine.headers["etag"] == f'"{uuid.UUID(order["id"]).hex}-1"'
    assert (await orders.client.get(path, headers=orders.as_user())).status_code == 404
    assert (await orders.client.get(path, headers=orders.as_admin())).status_code == 200
    assert (await orders.client.get("/orders/nope", headers=orders.as_admin())).status_code == 404
    unknown = f"/orders/{uuid.uuid4()}"
    assert (await orders.client.get(unknown, headers=orders.as_admin())).status_code == 404


async def test_acting_on_someone_elses_order_is_404_and_changes_nothing(orders: Any) -> None:
    lamp = orders.catalog.add()
    order = await orders.placed(orders.as_user(), [(lamp, 1)])
    response = await orders.client.post(f"/orders/{order['id']}/cancel", headers=orders.as_user())
    assert response.status_code == 404
    assert orders.catalog.stock(lamp) == 9


async def test_listing_shows_a_user_only_their_own_newest_first(orders: Any) -> None:
    lamp = orders.catalog.add(stock=100)
    buyer_id = str(uuid.uuid4())
    buyer = orders.as_user(buyer_id)
    placed = [await orders.placed(buyer, [(lamp, 1)]) for _ in range(5)]
    await orders.placed(orders.as_user(), [(lamp, 1)])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await orders.client.get("/orders", params=params, headers=buyer)).json()
        seen += [order["id"] for order in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [order["id"] for order in reversed(placed)]


async def test_an_admin_lists_everyones_orders_and_filters_them(orders: Any) -> None:
    lamp = orders.catalog.add(stock=100)
    buyer_id = str(uuid.uuid4())
    first = await orders.placed(orders.as_user(buyer_id), [(lamp, 1)])
    second = await orders.placed(orders.as_user(buyer_id), [(lamp, 1)])
    admin = orders.as_admin()
    await orders.client.post(f"/orders/{first['id']}/cancel", headers=admin)
    mine = await orders.client.get("/orders", params={"user_id": buyer_id}, headers=admin)
    assert [o["id"] for o in mine.json()["items"]] == [second["id"], first["id"]]
    cancelled = await orders.client.get(
        "/orders", params={"user_id": buyer_id, "status": "cancelled"}, headers=admin
    )
    assert [o["id"] for o in cancelled.json()["items"]] == [first["id"]]
    # A USER's user_id parameter cannot show another buyer's orders.
    other = await orders.client.get(
        "/orders", params={"user_id": buyer_id}, headers=orders.as_user()
    )
    assert other.json()["items"] == []


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"limit": "0"}, id="limit-0"),
        pytest.param({"limit": "101"}, id="limit-101"),
        pytest.param({"status": "reserving"}, id="internal-status"),
        pytest.param({"status": "nope"}, id="unknown-status"),
        pytest.param({"cursor": "garbage"}, id="bad-cursor"),
    ],
)
async def test_a_bad_list_parameter_is_422(orders: Any, params: dict[str, str]) -> None:
    response = await orders.client.get("/orders", params=params, headers=orders.as_user())
    assert response.status_code == 422


async def test_a_cursor_made_with_other_filters_is_422(orders: Any) -> None:
    lamp = orders.catalog.add(stock=10)
    buyer = orders.as_user()
    for _ in range(2):
        await orders.placed(buyer, [(lamp, 1)])
    page = (await orders.client.get("/orders", params={"limit": "1"}, headers=buyer)).json()
    response = await orders.client.get(
        "/orders",
        params={"limit": "1", "cursor": page["next_cursor"], "status": "paid"},
        headers=buyer,
    )
    assert response.status_code == 422


async def test_the_buyer_cancels_an_unpaid_order_once(orders: Any) -> None:
    lamp = orders.catalog.add(stock=10)
    buyer = orders.as_user()
    order = await orders.placed(buyer, [(lamp, 4)])
    path = f"/orders/{order['id']}/cancel"
    cancelled = await orders.client.post(path, headers=buyer)
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["version"] == 2
    assert body["cancelled_at"] is not None
    assert orders.catalog.stock(lamp) == 10
    again = await orders.client.post(path, headers=buyer)
    assert again.status_code == 200 and again.json() == body
    assert orders.catalog.stock(lamp) == 10


async def test_payment_and_shipment_by_an_admin(orders: Any) -> None:
    lamp = orders.catalog.add()
    buyer = orders.as_user()
    order = await orders.placed(buyer, [(lamp, 1)])
    base = f"/orders/{order['id']}"
    admin = orders.as_admin()
    early = await orders.client.post(f"{base}/shipment", json={}, headers=admin)
    assert early.status_code == 409
    paid = await orders.client.post(f"{base}/payment", json={"reference": "TRX-1"}, headers=admin)
    assert paid.status_code == 200
    assert paid.json()["status"] == "paid" and paid.json()["payment_reference"] == "TRX-1"
    assert paid.json()["paid_at"] is not None and paid.json()["version"] == 2
    repeat = await orders.client.post(f"{base}/payment", json={"reference": "X"}, headers=admin)
    assert repeat.status_code == 200 and repeat.json() == paid.json()
    late = await orders.client.post(f"{base}/cancel", headers=buyer)
    assert late.status_code == 409
    shipped = await orders.client.post(
        f"{base}/shipment", json={"carrier": "DHL", "tracking_number": "JD1"}, headers=admin
    )
    assert shipped.status_code == 200 and shipped.json()["status"] == "shipped"
    assert shipped.json()["version"] == 3
    assert (await orders.client.post(f"{base}/shipment", json={}, headers=admin)).json() == (
        shipped.json()
    )
    assert (await orders.client.post(f"{base}/cancel", headers=admin)).status_code == 409
    assert orders.catalog.stock(lamp) == 9


async def test_an_admin_cancels_a_paid_order_and_its_stock_returns(orders: Any) -> None:
    lamp = orders.catalog.add(stock=10)
    order = await orders.placed(orders.as_user(), [(lamp, 3)])
    admin = orders.as_admin()
    base = f"/orders/{order['id']}"
    await orders.client.post(f"{base}/payment", json={"reference": "R"}, headers=admin)
    cancelled = await orders.client.post(f"{base}/cancel", headers=admin)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert orders.catalog.stock(lamp) == 10
    payment = await orders.client.post(f"{base}/payment", json={"reference": "R"}, headers=admin)
    assert payment.status_code == 409


async def test_a_user_cannot_record_payments(orders: Any) -> None:
    lamp = orders.catalog.add()
    buyer_id = str(uuid.uuid4())
    order = await orders.placed(orders.as_user(buyer_id), [(lamp, 1)])
    response = await orders.client.post(
        f"/orders/{order['id']}/payment", json={"reference": "R"}, headers=orders.as_user(buyer_id)
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-reference"),
        pytest.param({"reference": ""}, id="empty"),
        pytest.param({"reference": "r" * 201}, id="too-long"),
        pytest.param({"reference": "R", "amount": 5}, id="extra-field"),
    ],
)
async def test_an_invalid_payment_is_422_and_changes_nothing(
    orders: Any, body: dict[str, Any]
) -> None:
    lamp = orders.catalog.add()
    order = await orders.placed(orders.as_user(), [(lamp, 1)])
    path = f"/orders/{order['id']}"
    admin = orders.as_admin()
    assert (
        await orders.client.post(f"{path}/payment", json=body, headers=admin)
    ).status_code == 422
    assert (await orders.client.get(path, headers=admin)).json()["status"] == "pending_payment"


async def test_if_match_guards_the_actions(orders: Any) -> None:
    lamp = orders.catalog.add()
    order = await orders.placed(orders.as_user(), [(lamp, 1)])
    admin = orders.as_admin()
    base = f"/orders/{order['id']}"
    stale = '"' + uuid.UUID(order["id"]).hex + '-9"'
    refused = await orders.client.post(
        f"{base}/payment", json={"reference": "R"}, headers={**admin, "If-Match": stale}
    )
    assert refused.status_code == 412
    current = (await orders.client.get(base, headers=admin)).headers["etag"]
    accepted = await orders.client.post(
        f"{base}/payment", json={"reference": "R"}, headers={**admin, "If-Match": current}
    )
    assert accepted.status_code == 200
    again = await orders.client.post(f"{base}/cancel", headers={**admin, "If-Match": current})
    assert again.status_code == 412


async def test_concurrent_cancels_return_the_stock_once(orders: Any) -> None:
    lamp = orders.catalog.add(stock=10)
    buyer = orders.as_user()
    order = await orders.placed(buyer, [(lamp, 5)])
    answers = await asyncio.gather(
        *(orders.client.post(f"/orders/{order['id']}/cancel", headers=buyer) for _ in range(5))
    )
    assert {answer.status_code for answer in answers} == {200}
    assert {answer.json()["version"] for answer in answers} == {2}
    assert orders.catalog.stock(lamp) == 10
