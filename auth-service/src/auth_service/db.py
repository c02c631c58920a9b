"""Declarative base, UTC timestamps, session factory and the migration entry point."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

from shop_common.database import alembic_config, create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "auth_alembic_version"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def migrate_database(url: str, revision: str = "head", *, downgrade: bool = False) -> None:
    """Migrate `url` to `revision` (alembic upgrade, or downgrade), creating SQLite files."""
    from alembic import command  # here only: serving never imports Alembic (~8 MB)

    # No statement or lock timeout: an index build or a replica waiting for another's
    # migration may take longer than a request may.
    engine = create_engine(url, statement_timeout=0, lock_timeout=0)
    config = alembic_config(MIGRATIONS_DIR, url)

    def upgrade(connection: Connection) -> None:
        config.attributes["connection"] = connection
        if downgrade:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade)
    finally:
        await engine.dispose()
