"""Orders through the gateway against the real processes: checkout reserves product-service's
stock, payment, shipment, cancellation returns it, idempotent repeats, who sees what."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.test_original_flow import admin_headers, register_and_login

pytestmark = pytest.mark.e2e


def _product(gateway: httpx.Client, owner: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "Lamp", "price": 19.99, "stock": 5, **fields}
    created = gateway.post("/products", headers=owner, json=body)
    assert created.status_code == 201, created.text
    product: dict[str, Any] = created.json()
    return product


def _order(
    gateway: httpx.Client, buyer: dict[str, str], lines: list[tuple[str, int]], key: str = ""
) -> httpx.Response:
    return gateway.post(
        "/orders",
        headers={**buyer, "Idempotency-Key": key or uuid.uuid4().hex},
        json={"items": [{"product_id": p, "quantity": q} for p, q in lines]},
    )


def _stock(gateway: httpx.Client, product_id: str) -> int:
    stock: int = gateway.get(f"/products/{product_id}").json()["stock"]
    return stock


def _eventually_stock(gateway: httpx.Client, product_id: str, expected: int) -> None:
    deadline = time.monotonic() + 15  # a timeout, not a speed claim
    while _stock(gateway, product_id) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _stock(gateway, product_id) == expected


def test_an_order_is_placed_paid_and_shipped_through_the_gateway(gateway: httpx.Client) -> None:
    seller, _ = register_and_login(gateway)
    buyer, account = register_and_login(gateway)
    lamp = _product(gateway, seller, stock=5)
    desk = _product(gateway, seller, name="Desk", price=120, stock=2)
    before = gateway.get(f"/products/{lamp['id']}").headers["etag"]

    placed = _order(gateway, buyer, [(lamp["id"], 2), (desk["id"], 1)])
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert placed.headers["location"] == f"/orders/{order['id']}"
    assert order["user_id"] == account["id"] and order["status"] == "pending_payment"
    assert order["total"] == 159.98
    assert [item["unit_price"] for item in order["items"]] == [19.99, 120]
    # Reserved before the 201: stock, version and ETag changed.
    assert _stock(gateway, lamp["id"]) == 3 and _stock(gateway, desk["id"]) == 1
    assert gateway.get(f"/products/{lamp['id']}").headers["etag"] != before

    mine = gateway.get("/orders", headers=buyer).json()["items"]
    assert [o["id"] for o in mine] == [order["id"]]
    stranger, _ = register_and_login(gateway)
    assert gateway.get(f"/orders/{order['id']}", headers=stranger).status_code == 404
    assert gateway.get("/orders", headers=stranger).json()["items"] == []
    assert gateway.get(f"/orders/{order['id']}").status_code == 401

    admin = admin_headers(gateway)
    base = f"/orders/{order['id']}"
    assert gateway.post(f"{base}/payment", headers=buyer, json={"reference": "R"}).status_code == (
        403
    )
    paid = gateway.post(f"{base}/payment", headers=admin, json={"reference": "TRX-42"})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert gateway.post(f"{base}/cancel", headers=buyer).status_code == 409
    shipped = gateway.post(f"{base}/shipment", headers=admin, json={"carrier": "DHL"})
    assert shipped.status_code == 200 and shipped.json()["status"] == "shipped"
    assert _stock(gateway, lamp["id"]) == 3


def test_cancelling_returns_the_stock_and_short_stock_is_409(gateway: httpx.Client) -> None:
    seller, _ = register_and_login(gateway)
    buyer, _ = register_and_login(gateway)
    lamp = _product(gateway, seller, stock=3)
    order = _order(gateway, buyer, [(lamp["id"], 3)]).json()
    short = _order(gateway, buyer, [(lamp["id"], 1)])
    assert short.status_code == 409
    assert [e["field"] for e in short.json()["errors"]] == ["items.0.quantity"]
    cancelled = gateway.post(f"/orders/{order['id']}/cancel", headers=buyer)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    _eventually_stock(gateway, lamp["id"], 3)
    assert gateway.post(f"/orders/{order['id']}/cancel", headers=buyer).status_code == 200
    time.sleep(0.5)  # the event's release after the direct one: still returned once
    assert _stock(gateway, lamp["id"]) == 3


def test_a_repeat_with_the_same_key_places_nothing_new(gateway: httpx.Client) -> None:
    seller, _ = register_and_login(gateway)
    buyer, _ = register_and_login(gateway)
    lamp = _product(gateway, seller, stock=5)
    first = _order(gateway, buyer, [(lamp["id"], 1)], key="same-key")
    again = _order(gateway, buyer, [(lamp["id"], 1)], key="same-key")
    other = _order(gateway, buyer, [(lamp["id"], 2)], key="same-key")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert other.status_code == 422
    assert _stock(gateway, lamp["id"]) == 4
    missing = gateway.post(
        "/orders", headers=buyer, json={"items": [{"product_id": lamp["id"], "quantity": 1}]}
    )
    assert missing.status_code == 400


def test_an_order_for_a_product_that_does_not_exist_is_422(gateway: httpx.Client) -> None:
    buyer, _ = register_and_login(gateway)
    response = _order(gateway, buyer, [(str(uuid.uuid4()), 1)])
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["items.0.product_id"]


def test_order_routes_need_a_token_and_unknown_actions_are_404(gateway: httpx.Client) -> None:
    assert gateway.post("/orders", json={"items": []}).status_code == 401
    assert gateway.get("/orders").status_code == 401
    some = f"/orders/{uuid.uuid4()}"
    assert gateway.post(f"{some}/refund").status_code == 404
    assert gateway.get(f"{some}/cancel").status_code == 405
