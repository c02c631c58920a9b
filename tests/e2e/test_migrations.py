"""Both services migrate into one PostgreSQL database without colliding."""

from __future__ import annotations

import os
import subprocess
import sys

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shop_common.testing import fresh_postgres_database, postgres_base_url

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def migrate(module: str, variable: str, url: str) -> None:
    env = {**os.environ, variable: url, "SHOP_TESTING": "true"}
    result = subprocess.run(
        [sys.executable, "-m", module, "migrate"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
        names = {row[0] for row in rows}
    await engine.dispose()
    return names


def test_auth_and_product_migrations_share_one_postgres_database() -> None:
    base = postgres_base_url()

    async def scenario() -> set[str]:
        async with fresh_postgres_database(base) as url:
            for _ in range(2):  # the second round must be a no-op for both
                await anyio.to_thread.run_sync(migrate, "auth_service", "AUTH_DATABASE_URL", url)
                await anyio.to_thread.run_sync(
                    migrate, "product_service", "PRODUCT_DATABASE_URL", url
                )
            return await _tables(url)

    tables = anyio.run(scenario)
    assert {"auth_alembic_version", "product_alembic_version", "account", "product"} <= tables
    assert "alembic_version" not in tables
