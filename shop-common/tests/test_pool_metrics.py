"""Database pool use on a service's /metrics, read from the pool when scraped."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shop_common.credential import CredentialVerifier
from shop_common.database import create_engine
from shop_common.keys import load_public_key
from shop_common.service_app import install_service_defaults
from shop_common.settings import ServiceSettings
from shop_common.testing import (
    fresh_postgres_database,
    postgres_base_url,
    write_gateway_keys,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_collection_midway() -> Iterator[None]:
    """The gauges sum every live engine: earlier tests' engines, freed by a collection
    between two scrapes, would move them. Collect first, then none until the test ends."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
async def metrics_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    write_gateway_keys(tmp_path)
    settings = ServiceSettings(data_dir=tmp_path)
    app = FastAPI(redirect_slashes=False)
    verifier = CredentialVerifier(load_public_key(settings.gateway_public_key_path), "svc")
    install_service_defaults(app, settings=settings, verifier=verifier)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        yield c


async def pool_gauges(client: httpx.AsyncClient) -> dict[str, float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    gauges: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "db_pool_connections":
                gauges[sample.labels["state"]] = sample.value
            elif sample.name == "db_pool_size":
                gauges["size"] = sample.value
            elif sample.name == "db_pool_waiting":
                gauges["waiting"] = sample.value
    return gauges


async def test_metrics_show_connections_checked_out_and_idle(
    database_url: str, metrics_client: httpx.AsyncClient
) -> None:
    before = await pool_gauges(metrics_client)
    engine = create_engine(database_url, pool_size=2, max_overflow=1)
    try:
        first = await engine.connect()
        second = await engine.connect()
        third = await engine.connect()
        for connection in (first, second, third):
            await connection.execute(text("SELECT 1"))
        busy = await pool_gauges(metrics_client)
        for connection in (first, second, third):
            await connection.close()
        after = await pool_gauges(metrics_client)
    finally:
        await engine.dispose()

    assert busy["size"] - before["size"] == 2
    assert busy["checked_out"] - before["checked_out"] == 3
    assert busy["overflow"] - before["overflow"] == 1
    assert after["checked_out"] == before["checked_out"]
    # pool_size connections stay open for the next request; the overflow one closes
    assert after["idle"] - before["idle"] == 2


async def test_metrics_show_requests_waiting_for_a_connection(
    database_url: str, metrics_client: httpx.AsyncClient
) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        holder = await engine.connect()
        await holder.execute(text("SELECT 1"))
        before = await pool_gauges(metrics_client)

        async def checkout() -> AsyncConnection:
            return await engine.connect()

        waiter = asyncio.create_task(checkout())
        while (during := await pool_gauges(metrics_client))["waiting"] == before["waiting"]:
            await asyncio.sleep(0.005)  # the test's timeout bounds this
        await holder.close()
        await (await waiter).close()
        after = await pool_gauges(metrics_client)
    finally:
        await engine.dispose()

    assert during["waiting"] - before["waiting"] == 1
    assert after["waiting"] == before["waiting"]


@pytest.mark.postgres
async def test_more_requests_than_connections_wait_for_the_pool_instead_of_opening_more() -> None:
    """A fixed pool: 20 concurrent queries on a pool of 3 use 3 server connections."""
    async with fresh_postgres_database(postgres_base_url()) as url:
        engine = create_engine(url, pool_size=3)
        opened = []

        async def query() -> None:
            async with engine.connect() as connection:
                pid = await connection.scalar(text("SELECT pg_backend_pid() FROM pg_sleep(0.05)"))
                opened.append(pid)

        try:
            await asyncio.gather(*(query() for _ in range(20)))
        finally:
            await engine.dispose()
    assert len(opened) == 20
    assert len(set(opened)) == 3
