"""Declarative base with the shared naming convention, the session factory, the migrate step."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

from shop_common.migrate import NAMING_CONVENTION, upgrade_database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "auth_alembic_version"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Rows stay readable after commit: the service returns what it just wrote.
    return async_sessionmaker(engine, expire_on_commit=False)


async def migrate_database(url: str, revision: str = "head", *, downgrade: bool = False) -> None:
    """Bring the database to `revision` (alembic upgrade head by default)."""
    await upgrade_database(
        url,
        migrations_dir=MIGRATIONS_DIR,
        version_table=VERSION_TABLE,
        revision=revision,
        downgrade=downgrade,
    )
