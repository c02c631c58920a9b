"""Fixtures shared by shop-common's tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError
from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shop_common.database import create_engine
from shop_common.events import inbox_table, outbox_table
from shop_common.events.testing import EventNames, nats_test_url, unique_event_names
from shop_common.testing import fresh_postgres_database, postgres_base_url, sqlite_url


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file, and a fresh PostgreSQL database when configured."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    async with fresh_postgres_database(postgres_base_url()) as url:
        yield url


@dataclass
class EventDatabase:
    """A database with an outbox, a consumer's inbox and a table the handlers write to."""

    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    outbox: Table
    inbox: Table
    effect: Table


@pytest.fixture
async def event_db(database_url: str) -> AsyncIterator[EventDatabase]:
    metadata = MetaData()
    outbox = outbox_table(metadata)
    inbox = inbox_table(metadata, "inbox_test")
    # No key on purpose: an effect applied twice shows as two rows.
    effect = Table("effect", metadata, Column("event_id", String(36)), Column("value", String(100)))
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        yield EventDatabase(
            database_url,
            engine,
            async_sessionmaker(engine, expire_on_commit=False),
            outbox,
            inbox,
            effect,
        )
    finally:
        await engine.dispose()


@pytest.fixture
async def nats_client() -> AsyncIterator[Client]:
    """A connection to the machine's NATS server (TEST_NATS_URL)."""
    client = await nats.connect(nats_test_url(), connect_timeout=5, max_reconnect_attempts=3)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def event_names(nats_client: Client) -> AsyncIterator[EventNames]:
    """Streams no other test touches; deleted afterwards (a crashed run's expire)."""
    names = unique_event_names()
    yield names
    js = nats_client.jetstream()
    for stream in (names.stream, names.dead_letters.stream):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
