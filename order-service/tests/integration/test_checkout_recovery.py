"""Expiry, checkouts given up, and the events each change leaves in the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update

from order_service.models import PurchaseOrder, Status, order_outbox

pytestmark = pytest.mark.anyio


async def _events_of(orders: Any, order_id: str) -> list[str]:
    async with orders.app.state.sessionmaker() as session:
        rows = (await session.execute(select(order_outbox).order_by(order_outbox.c.position))).all()
    return [row.type for row in rows if orjson.loads(row.data)["order_id"] == order_id]


async def test_an_unpaid_order_expires_after_its_deadline_and_returns_its_stock(
    orders: Any,
) -> None:
    lamp = orders.catalog.add(stock=10)
    buyer = orders.as_user()
    order = await orders.placed(buyer, [(lamp, 4)])
    paid = await orders.placed(buyer, [(lamp, 1)])
    admin = orders.as_admin()
    await orders.client.post(
        f"/orders/{paid['id']}/payment", json={"reference": "R"}, headers=admin
    )
    sweeper = orders.app.state.sweeper
    expires_at = datetime.fromisoformat(order["expires_at"].replace("Z", "+00:00"))
    await sweeper.sweep(now=expires_at - timedelta(seconds=1))
    assert (await orders.client.get(f"/orders/{order['id']}", headers=buyer)).json()[
        "status"
    ] == "pending_payment"
    await sweeper.sweep(now=expires_at + timedelta(seconds=1))
    expired = (await orders.client.get(f"/orders/{order['id']}", headers=buyer)).json()
    assert expired["status"] == "expired" and expired["version"] == 2
    assert orders.catalog.stock(lamp) == 9  # the paid order keeps its unit
    assert (await orders.client.get(f"/orders/{paid['id']}", headers=buyer)).json()[
        "status"
    ] == "paid"
    cancel = await orders.client.post(f"/orders/{order['id']}/cancel", headers=buyer)
    assert cancel.status_code == 409
    await sweeper.sweep(now=expires_at + timedelta(seconds=2))
    assert await _events_of(orders, order["id"]) == ["order.placed", "order.expired"]


async def test_each_change_records_one_event(orders: Any) -> None:
    lamp = orders.catalog.add()
    order = await orders.placed(orders.as_user(), [(lamp, 2)])
    admin = orders.as_admin()
    base = f"/orders/{order['id']}"
    await orders.client.post(f"{base}/payment", json={"reference": "R"}, headers=admin)
    await orders.client.post(f"{base}/payment", json={"reference": "R"}, headers=admin)
    await orders.client.post(f"{base}/shipment", json={"carrier": "DHL"}, headers=admin)
    assert await _events_of(orders, order["id"]) == ["order.placed", "order.paid", "order.shipped"]
    async with orders.app.state.sessionmaker() as session:
        placed = (
            await session.execute(select(order_outbox).where(order_outbox.c.type == "order.placed"))
        ).all()
    data = next(
        orjson.loads(r.data) for r in placed if orjson.loads(r.data)["order_id"] == order["id"]
    )
    assert data["items"] == [{"product_id": lamp, "quantity": 2}]
    assert data["total"] == "39.98" and data["number"] == order["number"]


async def test_product_service_not_answering_gives_503_and_places_nothing(orders: Any) -> None:
    lamp = orders.catalog.add(stock=10)
    orders.catalog.hang = True
    headers = {**orders.as_user(), "Idempotency-Key": "slow-catalog"}
    body = {"items": [{"product_id": lamp, "quantity": 1}]}
    refused = await orders.client.post("/orders", json=body, headers=headers)
    assert refused.status_code == 503
    assert refused.headers["retry-after"]
    assert refused.headers["content-type"] == "application/problem+json"
    order_id = orders.catalog.calls[0][1]
    # Given up: a late reservation for this order is refused (its release came first).
    assert orders.catalog.reservations[order_id]["status"] == "released"
    assert await _events_of(orders, order_id) == ["order.aborted"]
    # The key was freed: the same request placed once product-service is back.
    orders.catalog.hang = False
    again = await orders.client.post("/orders", json=body, headers=headers)
    assert again.status_code == 201
    assert orders.catalog.stock(lamp) == 9


async def test_a_checkout_past_its_deadline_is_given_up_and_its_key_freed(orders: Any) -> None:
    """The gateway's deadline passes while product-service is stuck: the checkout is undone
    (order.aborted, key freed) although the request's own commits are refused by then."""
    lamp = orders.catalog.add(stock=10)
    orders.catalog.hang = True
    buyer_id = str(uuid.uuid4())
    late = orders.keys.headers("order-service", user_id=buyer_id, role="USER", deadline_in=0.5)
    body = {"items": [{"product_id": lamp, "quantity": 1}]}
    refused = await orders.client.post(
        "/orders", json=body, headers={**late, "Idempotency-Key": "deadline"}
    )
    assert refused.status_code == 503
    order_id = orders.catalog.calls[0][1]
    assert await _events_of(orders, order_id) == ["order.aborted"]
    orders.catalog.hang = False
    again = await orders.client.post(
        "/orders", json=body, headers={**orders.as_user(buyer_id), "Idempotency-Key": "deadline"}
    )
    assert again.status_code == 201
    assert orders.catalog.stock(lamp) == 9


async def test_an_error_from_product_service_gives_503(orders: Any) -> None:
    lamp = orders.catalog.add(stock=10)
    orders.catalog.fail_with = 500
    response = await orders.place(orders.as_user(), [(lamp, 1)])
    assert response.status_code == 503
    listed = await orders.client.get("/orders", headers=orders.as_admin())
    assert all(o["items"][0]["product_id"] != lamp for o in listed.json()["items"])


async def test_a_checkout_left_reserving_by_a_dead_process_is_given_up(orders: Any) -> None:
    """The state a process killed between reserving and answering leaves behind."""
    lamp = orders.catalog.add(stock=10)
    buyer_id = uuid.uuid4()
    order_id = uuid.uuid4()
    started = datetime.now(UTC) - timedelta(minutes=5)
    async with orders.app.state.sessionmaker() as session:
        session.add(
            PurchaseOrder(
                id=order_id,
                user_id=buyer_id,
                status=Status.RESERVING,
                total_cents=0,
                created_at=started,
                updated_at=started,
                version=1,
            )
        )
        await session.commit()
    # What the dead process had reserved before it died.
    orders.catalog.reservations[str(order_id)] = {
        "status": "held",
        "items": [{"product_id": lamp, "quantity": 3}],
        "document": None,
    }
    orders.catalog.products[lamp]["stock"] -= 3
    _, given_up = await orders.app.state.sweeper.sweep()
    assert given_up >= 1
    assert orders.catalog.stock(lamp) == 10
    async with orders.app.state.sessionmaker() as session:
        status = await session.scalar(
            select(PurchaseOrder.status).where(PurchaseOrder.id == order_id)
        )
    assert status == Status.ABORTED
    assert await _events_of(orders, str(order_id)) == ["order.aborted"]
    # A second pass (another replica) changes nothing more.
    await orders.app.state.sweeper.sweep()
    assert await _events_of(orders, str(order_id)) == ["order.aborted"]


async def test_a_recent_checkout_is_left_alone(orders: Any) -> None:
    order_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with orders.app.state.sessionmaker() as session:
        session.add(
            PurchaseOrder(
                id=order_id,
                user_id=uuid.uuid4(),
                status=Status.RESERVING,
                total_cents=0,
                created_at=now,
                updated_at=now,
                version=1,
            )
        )
        await session.commit()
    await orders.app.state.sweeper.sweep()
    async with orders.app.state.sessionmaker() as session:
        status = await session.scalar(
            select(PurchaseOrder.status).where(PurchaseOrder.id == order_id)
        )
        await session.execute(
            update(PurchaseOrder).where(PurchaseOrder.id == order_id).values(status=Status.ABORTED)
        )
        await session.commit()
    assert status == Status.RESERVING
