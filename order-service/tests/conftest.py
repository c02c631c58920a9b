"""Fixtures: a migrated database per backend, order-service in-process, and a small real
HTTP server standing in for product-service's stock reservations (the interface of
product-service's /stock/reservations; tests/e2e runs the real one)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from order_service.config import SERVICE_NAME, Settings
from order_service.db import migrate_database
from order_service.main import create_app
from shop_common.json_body import loads_exact
from shop_common.testing import (
    GatewayKeys,
    write_credential_keys,
    write_gateway_keys,
)
from testsupport.databases import BACKENDS, migrated_database


@dataclass
class FakeCatalog:
    """Products and reservations as product-service keeps them, in memory."""

    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    reservations: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)
    # Set to make the next reservations hang (product-service stuck) or fail.
    hang: bool = False
    fail_with: int | None = None
    port: int = 0

    def add(self, *, price: str = "19.99", stock: int = 10, currency: str = "USD") -> str:
        product_id = str(uuid.uuid4())
        self.products[product_id] = {
            "name": f"Lamp {product_id[:8]}",
            "sku": f"SKU-{product_id[:8]}",
            "price": Decimal(price),
            "currency": currency,
            "stock": stock,
        }
        return product_id

    def stock(self, product_id: str) -> int:
        return int(self.products[product_id]["stock"])

    async def reserve(self, request: web.Request) -> web.Response:
        order_id = request.match_info["order_id"]
        self.calls.append(("PUT", order_id, request.headers.get("x-shop-credential")))
        if self.hang:
            await asyncio.sleep(3600)
        if self.fail_with:
            return web.json_response({"status": self.fail_with}, status=self.fail_with)
        body = loads_exact(await request.read())
        items = body["items"]
        existing = self.reservations.get(order_id)
        if existing is not None:
            if existing["status"] == "released":
                return web.json_response({"status": 410}, status=410)
            return _json(existing["document"], 200)
        unknown = [
            {"field": f"items.{n}.product_id", "message": "no such product"}
            for n, item in enumerate(items)
            if item["product_id"] not in self.products
        ]
        if unknown:
            return web.json_response({"status": 422, "errors": unknown}, status=422)
        short = [
            {"field": f"items.{n}.quantity", "message": "more than the stock"}
            for n, item in enumerate(items)
            if self.products[item["product_id"]]["stock"] < item["quantity"]
        ]
        if short:
            return web.json_response({"status": 409, "errors": short}, status=409)
        lines = []
        for item in items:
            product = self.products[item["product_id"]]
            product["stock"] -= item["quantity"]
            lines.append(
                {
                    "product_id": item["product_id"],
                    "name": product["name"],
                    "sku": product["sku"],
                    "price": product["price"],
                    "currency": product["currency"],
                    "quantity": item["quantity"],
                }
            )
        document = {"order_id": order_id, "status": "held", "items": lines}
        self.reservations[order_id] = {"status": "held", "items": items, "document": document}
        return _json(document, 201)

    async def release(self, request: web.Request) -> web.Response:
        order_id = request.match_info["order_id"]
        self.calls.append(("DELETE", order_id, request.headers.get("x-shop-credential")))
        reservation = self.reservations.get(order_id)
        if reservation is None:
            self.reservations[order_id] = {"status": "released", "items": [], "document": None}
        elif reservation["status"] == "held":
            reservation["status"] = "released"
            for item in reservation["items"]:
                self.products[item["product_id"]]["stock"] += item["quantity"]
        return web.Response(status=204)


def _json(document: dict[str, Any], status: int) -> web.Response:
    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return float(value)
        raise TypeError

    return web.Response(
        body=orjson.dumps(document, default=default),
        status=status,
        content_type="application/json",
    )


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_credential_keys(directory, SERVICE_NAME)
    return directory


@pytest.fixture(scope="session")
def gateway_keys(data_dir: Path) -> GatewayKeys:
    return write_gateway_keys(data_dir)


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """One database per backend for the whole run; tests use unique data, never cleanup."""
    directory = tmp_path_factory.mktemp("db")
    async for url in migrated_database(request.param, directory, migrate_database):
        yield url


@pytest.fixture
async def catalog() -> AsyncIterator[FakeCatalog]:
    fake = FakeCatalog()
    app = web.Application()
    app.router.add_put("/stock/reservations/{order_id}", fake.reserve)
    app.router.add_delete("/stock/reservations/{order_id}", fake.release)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = runner.addresses[0][1]
    try:
        yield fake
    finally:
        fake.hang = False
        await runner.cleanup()


@dataclass
class Orders:
    """order-service in-process, credentials as the gateway would mint them."""

    client: httpx.AsyncClient
    keys: GatewayKeys
    app: Any
    catalog: FakeCatalog

    def as_user(self, user_id: str | None = None, role: str = "USER") -> dict[str, str]:
        return self.keys.headers(SERVICE_NAME, user_id=user_id or str(uuid.uuid4()), role=role)  # type: ignore[arg-type]

    def as_admin(self) -> dict[str, str]:
        return self.as_user(role="ADMIN")

    async def place(
        self, buyer: dict[str, str], items: list[tuple[str, int]], **extra: Any
    ) -> httpx.Response:
        body = {"items": [{"product_id": p, "quantity": q} for p, q in items], **extra}
        headers = {**buyer, "Idempotency-Key": uuid.uuid4().hex}
        return await self.client.post("/orders", json=body, headers=headers)

    async def placed(self, buyer: dict[str, str], items: list[tuple[str, int]]) -> dict[str, Any]:
        response = await self.place(buyer, items)
        assert response.status_code == 201, response.text
        document: dict[str, Any] = response.json()
        return document


@pytest.fixture
async def orders(
    database_url: str, gateway_keys: GatewayKeys, data_dir: Path, catalog: FakeCatalog
) -> AsyncIterator[Orders]:
    settings = Settings(
        data_dir=data_dir,
        order_database_url=database_url,
        product_service_url=f"http://127.0.0.1:{catalog.port}",
        stock_timeout_seconds=1.0,
        # The tests run the sweeper's passes themselves (its own would race them).
        sweep_interval_seconds=600,
        shop_testing=True,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://order", auth=gateway_keys.auth()
        ) as client:
            yield Orders(client=client, keys=gateway_keys, app=app, catalog=catalog)
