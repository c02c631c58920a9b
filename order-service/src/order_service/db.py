"""Declarative base with a naming convention, the session factory and the migration entry point."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

from shop_common.database import alembic_config, create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "order_alembic_version"

# Every constraint and index name carries the table name, so every service can share one
# PostgreSQL database (index names are per schema there, not per table).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def in_schema_of(dialect_name: str) -> Callable[..., bool]:
    """Alembic's include_object for comparing the models with a database of this dialect:
    an index the models keep for another dialect only (info["dialect"]) is not expected."""

    def include(item: Any, _name: str | None, kind: str, reflected: bool, _other: Any) -> bool:
        if kind != "index" or reflected:
            return True
        return bool(item.info.get("dialect", dialect_name) == dialect_name)

    return include


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Rows stay readable after commit: the service returns what it just wrote.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def migrate_database(url: str) -> None:
    """Bring the database to the latest migration (alembic upgrade head)."""
    # No statement or lock timeout: an index build or a replica waiting for another's
    # migration may take longer than a request may.
    engine = create_engine(url, statement_timeout=0, lock_timeout=0)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Replicas starting together migrate one after the other.
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": VERSION_TABLE}
                )
            await connection.run_sync(_upgrade_head, url)
    finally:
        await engine.dispose()


def _upgrade_head(connection: Connection, url: str) -> None:
    from alembic import command  # here only: serving never imports Alembic (~8 MB)

    config = alembic_config(MIGRATIONS_DIR, url)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
