"""Migrations from an empty database, on SQLite and PostgreSQL, beside auth-service's tables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from product_service.db import MIGRATIONS_DIR, VERSION_TABLE, Base, migrate_database
from shop_common.database import create_engine, head_revision, schema_state
from shop_common.keys import public_pem
from shop_common.migrate import in_schema_of
from shop_common.testing import GatewayKeys, fresh_postgres_database, postgres_base_url, sqlite_url
from testsupport.processes import free_port, wait_until_answers
from testsupport.product import BACKENDS, running_shop, write_order_service_keys

pytestmark = pytest.mark.anyio


async def empty_database(backend: str, directory: Path) -> object:
    if backend == "sqlite":
        return sqlite_url(directory, "empty.db")
    return fresh_postgres_database(postgres_base_url())


def names(connection: Connection) -> dict[str, set[str]]:
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    objects: set[str] = set()
    for table in tables:
        objects |= {index["name"] or "" for index in inspector.get_indexes(table)}
        objects |= {c["name"] or "" for c in inspector.get_unique_constraints(table)}
        objects |= {c["name"] or "" for c in inspector.get_check_constraints(table)}
        objects.add(inspector.get_pk_constraint(table)["name"] or "")
    return {"tables": tables, "objects": objects - {""}}


def schema_differences(connection: Connection) -> list[object]:
    options = {
        "version_table": VERSION_TABLE,
        "include_object": in_schema_of(connection.dialect.name),
    }
    context = MigrationContext.configure(connection, opts=options)
    return list(compare_metadata(context, Base.metadata))


async def check_migrates_from_empty(url: str) -> None:
    engine = create_engine(url)
    try:
        assert await schema_state(engine, MIGRATIONS_DIR, VERSION_TABLE) == "migration_pending"
        await migrate_database(url)
        await migrate_database(url)  # the second run is a no-op
        assert await schema_state(engine, MIGRATIONS_DIR, VERSION_TABLE) == "ok"
        async with engine.connect() as connection:
            found = await connection.run_sync(names)
            assert {"product", VERSION_TABLE} <= found["tables"]
            assert "alembic_version" not in found["tables"]
            # Index and constraint names are per schema in PostgreSQL: all carry the table.
            tables = found["tables"] - {VERSION_TABLE}
            assert all(any(t in name for t in tables) for name in found["objects"]), found
            assert all(table.startswith(("product", "stock_reservation")) for table in tables), (
                tables
            )
            assert await connection.run_sync(schema_differences) == []
            versions = await connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
            assert [row[0] for row in versions] == [head_revision(MIGRATIONS_DIR)]
    finally:
        await engine.dispose()


async def test_migrates_an_empty_sqlite_database(tmp_path: Path) -> None:
    await check_migrates_from_empty(sqlite_url(tmp_path, "fresh.db"))


@pytest.mark.postgres
async def test_migrates_an_empty_postgres_database() -> None:
    async with fresh_postgres_database(postgres_base_url()) as url:
        await check_migrates_from_empty(url)


@pytest.mark.postgres
async def test_product_migrations_leave_another_services_tables_alone() -> None:
    async with fresh_postgres_database(postgres_base_url()) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:  # what auth-service's migration leaves
                await connection.execute(text("CREATE TABLE account (id uuid PRIMARY KEY)"))
                await connection.execute(
                    text("CREATE TABLE auth_alembic_version (version_num varchar(32) NOT NULL)")
                )
                await connection.execute(text("INSERT INTO auth_alembic_version VALUES ('a1')"))
            await migrate_database(url)
            await migrate_database(url)
            async with engine.connect() as connection:
                found = await connection.run_sync(names)
                auth = await connection.execute(text("SELECT * FROM auth_alembic_version"))
                assert [tuple(row) for row in auth] == [("a1",)]
            assert {"account", "auth_alembic_version", "product", VERSION_TABLE} <= found["tables"]
            assert await schema_state(engine, MIGRATIONS_DIR, VERSION_TABLE) == "ok"
        finally:
            await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_ready_is_503_until_the_schema_is_at_head(
    backend: str, tmp_path: Path, gateway_keys: GatewayKeys, data_dir: Path
) -> None:
    if backend == "sqlite":
        await check_ready_flow(sqlite_url(tmp_path, "ready.db"), gateway_keys, data_dir)
        return
    async with fresh_postgres_database(postgres_base_url()) as url:
        await check_ready_flow(url, gateway_keys, data_dir)


async def check_ready_flow(url: str, keys: GatewayKeys, data_dir: Path) -> None:
    async with running_shop(url, keys, data_dir) as shop:
        pending = await shop.client.get("/ready")
        assert pending.status_code == 503
        assert pending.json()["checks"] == {"database": "migration_pending"}
        assert (await shop.client.get("/health")).status_code == 200
        await migrate_database(url)
        assert (await shop.client.get("/ready")).status_code == 200


async def test_ready_is_503_when_the_database_does_not_answer(
    gateway_keys: GatewayKeys, data_dir: Path
) -> None:
    url = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    async with running_shop(url, gateway_keys, data_dir) as shop:
        response = await shop.client.get("/ready")
        assert response.status_code == 503
        assert response.json()["checks"] == {"database": "unavailable"}


def test_the_command_line_migrates_and_serves(tmp_path: Path, gateway_keys: GatewayKeys) -> None:
    data_dir = tmp_path / "data"
    public_key = tmp_path / "gateway-public.pem"
    public_key.write_bytes(public_pem(gateway_keys.private_key.public_key()))
    write_order_service_keys(data_dir)  # data_dir/keys/order-service, as make run makes
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "PRODUCT_PORT": str(port),
        "GATEWAY_PUBLIC_KEY_FILE": str(public_key),
        "SHOP_TESTING": "true",
    }
    env.pop("PRODUCT_DATABASE_URL", None)
    migrated = subprocess.run(
        [sys.executable, "-m", "product_service", "migrate"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr.decode()
    assert (data_dir / "product.db").exists()
    server = subprocess.Popen(
        [sys.executable, "-m", "product_service", "serve"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = wait_until_answers(f"http://127.0.0.1:{port}/ready", server)
        assert ready.status_code == 200
        direct = httpx.get(f"http://127.0.0.1:{port}/products", timeout=5)
        assert direct.status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal to report it.
    assert server.returncode in (0, -signal.SIGTERM), output.decode()
    lines = output.decode().splitlines()
    assert any(
        '"service":"product-service"' in line and "GET /products 401" in line for line in lines
    )
