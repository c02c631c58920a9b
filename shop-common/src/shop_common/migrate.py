"""A service's schema: the naming convention of its tables, its Alembic environment, and
the migrate step (alembic upgrade head under a lock, so replicas starting together take
turns). Every service with a database uses these the same way:

    # db.py
    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)

    async def migrate_database(url: str) -> None:
        await upgrade_database(url, migrations_dir=MIGRATIONS_DIR, version_table=VERSION_TABLE)

    # migrations/env.py
    run_alembic_environment(Base.metadata, VERSION_TABLE, default_url=settings_url)

Alembic is imported inside the functions only: serving never loads it (~8 MB).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, MetaData, text

from shop_common.database import alembic_config, create_engine

# Every constraint and index name carries its table's name, so services can share one
# PostgreSQL database (index names are per schema there, not per table).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def in_schema_of(dialect_name: str) -> Callable[..., bool]:
    """Alembic's include_object for comparing the models with a database of this dialect:
    an index the models keep for another dialect only (info["dialect"]) is not expected."""

    def include(item: Any, _name: str | None, kind: str, reflected: bool, _other: Any) -> bool:
        if kind != "index" or reflected:
            return True
        return bool(item.info.get("dialect", dialect_name) == dialect_name)

    return include


async def upgrade_database(
    url: str,
    *,
    migrations_dir: Path,
    version_table: str,
    revision: str = "head",
    downgrade: bool = False,
) -> None:
    """Bring the database to `revision` (alembic upgrade, or downgrade), creating a SQLite
    file if needed; on PostgreSQL under an advisory lock named after the version table."""
    # No statement or lock timeout: an index build or a replica waiting for another's
    # migration may take longer than a request may.
    engine = create_engine(url, statement_timeout=0, lock_timeout=0)

    def run(connection: Connection) -> None:
        from alembic import command

        config = alembic_config(migrations_dir, url)
        config.attributes["connection"] = connection
        if downgrade:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": version_table}
                )
            await connection.run_sync(run)
    finally:
        await engine.dispose()


def run_alembic_environment(
    metadata: MetaData, version_table: str, *, default_url: Callable[[], str]
) -> None:
    """The body of a service's migrations/env.py: offline SQL, the connection
    upgrade_database passes (it holds the lock), or the alembic command line's own."""
    from alembic import context

    config = context.config

    def database_url() -> str:
        return config.get_main_option("sqlalchemy.url") or default_url()

    def include_name(name: str | None, kind: str, _parent: Any) -> bool:
        # Services may share one database: autogenerate must not see another's tables.
        return kind != "table" or name in metadata.tables

    def run_migrations(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=version_table,
            include_name=include_name,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=in_schema_of(connection.dialect.name),
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async_migrations() -> None:
        engine = create_engine(database_url())
        try:
            async with engine.begin() as connection:
                await connection.run_sync(run_migrations)
        finally:
            await engine.dispose()

    if context.is_offline_mode():
        context.configure(
            url=database_url(),
            target_metadata=metadata,
            version_table=version_table,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    elif (connection := config.attributes.get("connection")) is not None:
        run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())
