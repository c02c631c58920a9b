"""Mixed load through both gateways, the way a client behind a load balancer sends it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shop_common.testing import random_sku
from testsupport.cluster import Cluster

CLIENT_TIMEOUT = 15.0  # above the gateways' UPSTREAM_TIMEOUT (5 s): a hang shows as one


@dataclass
class Outcome:
    requests: int = 0
    failed_reads: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # SKUs whose POST got a 2xx
    statuses: Counter[str] = field(default_factory=Counter)  # "GET 200", "POST 502", ...


class Gateways:
    """Sends only to gateways whose /ready is 200, as Kubernetes' endpoints would."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.ready = set(urls)
        self._turn = itertools.count()

    def pick(self) -> str:
        ready = [url for url in self.urls if url in self.ready] or self.urls
        return ready[next(self._turn) % len(ready)]

    async def watch(self, client: httpx.AsyncClient) -> None:
        while True:
            for url in self.urls:
                try:
                    ok = (await client.get(f"{url}/ready", timeout=1)).status_code == 200
                except httpx.TransportError:
                    ok = False
                (self.ready.add if ok else self.ready.discard)(url)
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def load(
    cluster: Cluster, *, writes: float, auth_reads: float = 0.15, workers: int = 6
) -> AsyncIterator[Outcome]:
    """Runs the load for as long as the block runs; `writes`: share of product POSTs."""
    outcome = Outcome()
    gateways = Gateways([gateway.url for gateway in cluster.gateways])
    headers = {"Authorization": f"Bearer {cluster.admin_token}"}
    stop = asyncio.Event()
    clients = {
        url: httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT) for url in gateways.urls
    }

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            url = gateways.pick()
            draw = rng.random()
            body: dict[str, object] | None = None
            sku = ""
            if draw < writes:
                sku = random_sku()
                method, path = "POST", "/products"
                body = {"name": f"load {sku}", "price": 3, "sku": sku}
            elif draw < writes + auth_reads:
                method, path = "GET", "/auth/me"
            else:
                method, path = "GET", f"/products/{rng.choice(cluster.product_ids)}"
            outcome.requests += 1
            try:
                response = await clients[url].request(method, path, headers=headers, json=body)
            except httpx.HTTPError as exc:
                outcome.statuses[f"{method} {type(exc).__name__}"] += 1
                if method == "GET":
                    outcome.failed_reads.append(f"{url}{path}: {exc!r}")
                continue
            outcome.statuses[f"{method} {response.status_code}"] += 1
            if method == "GET" and response.status_code != 200:
                outcome.failed_reads.append(f"{url}{path}: {response.status_code} {response.text}")
            elif method == "POST" and response.is_success:
                outcome.created.append(sku)

    async with httpx.AsyncClient() as probe:
        watcher = asyncio.create_task(gateways.watch(probe))
        tasks = [asyncio.create_task(worker(n)) for n in range(workers)]
        try:
            yield outcome
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            for client in clients.values():
                await client.aclose()


async def sku_counts(database_url: str, skus: list[str]) -> dict[str, int]:
    """How many product rows carry each SKU."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT sku, count(*) FROM product WHERE sku = ANY(:skus) GROUP BY sku"),
                {"skus": skus},
            )
            return {str(sku): int(count) for sku, count in rows}
    finally:
        await engine.dispose()


async def terminate_backends(database_url: str) -> int:
    """pg_terminate_backend on every connection to the database but our own."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return len(rows.all())
    finally:
        await engine.dispose()
