"""Alembic environment: async engine, own version table, only auth-service's tables."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from auth_service import models  # noqa: F401  (registers the tables on Base.metadata)
from auth_service.db import VERSION_TABLE, Base
from shop_common.database import create_engine

config = context.config
target_metadata = Base.metadata
# Any constant shared by every auth-service replica; product-service uses another.
_MIGRATION_LOCK_ID = 0x4155_5448


def _include_name(name: str | None, type_: str, _: Any) -> bool:
    # product-service may share the database: autogenerate must not see its tables.
    return type_ != "table" or name in target_metadata.tables


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Two replicas migrating at once take turns instead of racing on CREATE TABLE.
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_name=_include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `python -m auth_service migrate`")

connection = config.attributes.get("connection")
if connection is None:
    asyncio.run(_run_async())
else:
    _run(connection)
