"""The outbox and inbox tables: the Alembic helpers create exactly what the models declare."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, MetaData

from shop_common.database import create_engine
from shop_common.events import inbox_table, outbox_table
from shop_common.events.migrations import (
    add_outbox_request_key,
    create_inbox_table,
    create_outbox_table,
    drop_inbox_table,
    drop_outbox_request_key,
    drop_outbox_table,
)

pytestmark = pytest.mark.anyio
NAMING = {"pk": "pk_%(table_name)s", "uq": "uq_%(table_name)s_%(column_0_N_name)s"}


def differences(connection: Connection, migrate: Any) -> list[Any]:
    context = MigrationContext.configure(connection)
    with Operations.context(context):
        migrate()
    metadata = MetaData(naming_convention=NAMING)
    outbox_table(metadata, "svc_outbox")
    inbox_table(metadata, "svc_inbox")
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_the_migration_helpers_create_the_tables_the_models_declare(
    database_url: str,
) -> None:
    # The first version, then each later change, as a service's revisions apply them.
    def upgrade() -> None:
        create_outbox_table("svc_outbox")
        add_outbox_request_key("svc_outbox")
        create_inbox_table("svc_inbox")

    def downgrade() -> None:
        drop_inbox_table("svc_inbox")
        drop_outbox_request_key("svc_outbox")
        drop_outbox_table("svc_outbox")

    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            assert await connection.run_sync(differences, upgrade) == []
        async with engine.begin() as connection:
            left = await connection.run_sync(differences, downgrade)
        assert {diff[0] for diff in left} == {"add_table", "add_index"}
    finally:
        await engine.dispose()
