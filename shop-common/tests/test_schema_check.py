"""The launcher's cheap "already migrated?" check: only a sure yes skips a migrate step."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shop_common.schema_check import at_head
from shop_common.testing import fresh_postgres_database, postgres_base_url

pytestmark = pytest.mark.anyio

TABLE = "demo_alembic_version"


def _migrations(tmp_path: Path) -> Path:
    location = tmp_path / "migrations"
    (location / "versions").mkdir(parents=True)
    (location / "versions" / "one.py").write_text('revision = "aaa1"\ndown_revision = None\n')
    (location / "versions" / "two.py").write_text('revision = "bbb2"\ndown_revision = "aaa1"\n')
    return location


def _sqlite(path: Path, *versions: str, table: str = TABLE) -> str:
    with sqlite3.connect(path) as connection:
        connection.execute(f"CREATE TABLE {table} (version_num VARCHAR(32) NOT NULL)")
        connection.executemany(f"INSERT INTO {table} VALUES (?)", [(v,) for v in versions])
    connection.close()
    return f"sqlite+aiosqlite:///{path}"


async def test_a_sqlite_database_at_the_head_revision_is_at_head(tmp_path: Path) -> None:
    url = _sqlite(tmp_path / "db.sqlite", "bbb2")
    assert await at_head(url, _migrations(tmp_path), TABLE, timeout=5)


@pytest.mark.parametrize(
    "versions",
    [
        pytest.param((), id="version table empty"),
        pytest.param(("aaa1",), id="an older revision"),
        pytest.param(("zzz9",), id="a revision these files do not know"),
        pytest.param(("aaa1", "bbb2"), id="two rows"),
    ],
)
async def test_a_sqlite_database_behind_or_unusual_is_not(
    tmp_path: Path, versions: tuple[str, ...]
) -> None:
    url = _sqlite(tmp_path / "db.sqlite", *versions)
    assert not await at_head(url, _migrations(tmp_path), TABLE, timeout=5)


async def test_a_missing_sqlite_file_is_not_at_head_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "data" / "db.sqlite"
    assert not await at_head(f"sqlite+aiosqlite:///{path}", _migrations(tmp_path), TABLE, timeout=5)
    assert not path.parent.exists()


async def test_a_sqlite_file_without_the_version_table_is_not_at_head(tmp_path: Path) -> None:
    url = _sqlite(tmp_path / "db.sqlite", "bbb2", table="other_table")
    assert not await at_head(url, _migrations(tmp_path), TABLE, timeout=5)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite+aiosqlite:///:memory:", id="in memory"),
        pytest.param("sqlite:///{path}", id="another driver"),
        pytest.param("sqlite+aiosqlite:///{path}?timeout=5", id="query string"),
        pytest.param("postgresql+asyncpg://u@127.0.0.1:1/db?ssl=require", id="driver options"),
        pytest.param("postgresql+asyncpg://u@127.0.0.1:1/db", id="nothing listens"),
        pytest.param("mysql+aiomysql://u@127.0.0.1/db", id="unknown database"),
    ],
)
async def test_anything_unusual_answers_no(tmp_path: Path, url: str) -> None:
    path = tmp_path / "db.sqlite"
    _sqlite(path, "bbb2")
    assert not await at_head(url.format(path=path), _migrations(tmp_path), TABLE, timeout=5)


async def test_files_without_one_head_answer_no(tmp_path: Path) -> None:
    location = _migrations(tmp_path)
    (location / "versions" / "fork.py").write_text('revision = "ccc3"\ndown_revision = "aaa1"\n')
    url = _sqlite(tmp_path / "db.sqlite", "bbb2")
    assert not await at_head(url, location, TABLE, timeout=5)


@pytest.mark.postgres
async def test_a_postgres_database_is_at_head_only_once_migrated(tmp_path: Path) -> None:
    location = _migrations(tmp_path)
    async with fresh_postgres_database(postgres_base_url()) as url:
        assert not await at_head(url, location, TABLE, timeout=5)  # no version table yet
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text(f"CREATE TABLE {TABLE} (version_num text)"))
                await connection.execute(text(f"INSERT INTO {TABLE} VALUES ('aaa1')"))
            assert not await at_head(url, location, TABLE, timeout=5)
            async with engine.begin() as connection:
                await connection.execute(text(f"UPDATE {TABLE} SET version_num = 'bbb2'"))
            assert await at_head(url, location, TABLE, timeout=5)
        finally:
            await engine.dispose()
