"""The database drops every connection (failover, restart): 503 or 200, never 500, then 200."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shop_common.testing import GatewayKeys, postgres_base_url
from testsupport.product import Shop, migrated_database, running_shop

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def terminate_backends(url: str) -> int:
    admin = create_async_engine(postgres_base_url(), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            result = await connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": url.rsplit("/", 1)[1]},
            )
            return int(result.scalar_one())
    finally:
        await admin.dispose()


async def get(shop: Shop, product_id: str) -> httpx.Response:
    return await shop.client.get(f"/products/{product_id}", headers=shop.anonymous())


def assert_unavailable_or_ok(response: httpx.Response) -> None:
    assert response.status_code in (200, 503), response.text
    if response.status_code == 503:
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "pause",
    [
        pytest.param(0.0, id="at-once"),
        pytest.param(0.2, id="after-the-driver-noticed"),
    ],
)
async def test_requests_after_the_database_dropped_every_connection(
    tmp_path: Path, gateway_keys: GatewayKeys, data_dir: Path, pause: float
) -> None:
    async for url in migrated_database("postgres", tmp_path):
        async with running_shop(url, gateway_keys, data_dir) as shop:
            product = await shop.create(shop.as_user())
            # Several pooled connections, all of which the server is about to close.
            warm = await asyncio.gather(*(get(shop, product["id"]) for _ in range(6)))
            assert {response.status_code for response in warm} == {200}
            assert await terminate_backends(url) >= 1
            await asyncio.sleep(pause)
            at_once = await asyncio.gather(*(get(shop, product["id"]) for _ in range(4)))
            for response in at_once:
                assert_unavailable_or_ok(response)
            one_by_one = [await asyncio.wait_for(get(shop, product["id"]), 10) for _ in range(4)]
            for response in one_by_one:
                assert_unavailable_or_ok(response)
            assert [response.status_code for response in one_by_one[-2:]] == [200, 200]
            # Writes recover too.
            await shop.create(shop.as_user())
