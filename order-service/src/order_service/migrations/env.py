"""Alembic environment: async engines, order-service's own version table."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from order_service import models  # noqa: F401  (registers the tables on Base.metadata)
from order_service.config import Settings
from order_service.db import VERSION_TABLE, Base, in_schema_of
from shop_common.database import create_engine

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings().database_url


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=in_schema_of(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_engine(_database_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    # migrate_database() passes its connection (and holds the migration lock).
    run_migrations(connection)
else:
    # The alembic command line, with alembic.ini.
    asyncio.run(run_async_migrations())
