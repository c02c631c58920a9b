"""Alembic helpers: create the outbox and inbox tables in a service's own revision.

from shop_common.events.migrations import create_inbox_table, create_outbox_table

def upgrade() -> None:
    create_outbox_table()
    create_inbox_table("inbox_stock")
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import column

from shop_common.events.tables import (
    DEFAULT_OUTBOX_TABLE,
    inbox_elements,
    outbox_elements,
    unpublished_index_name,
)


def create_outbox_table(name: str = DEFAULT_OUTBOX_TABLE) -> None:
    op.create_table(name, *outbox_elements(name))
    op.create_index(
        unpublished_index_name(name),
        name,
        ["position"],
        postgresql_where=column("published_at").is_(None),
        sqlite_where=column("published_at").is_(None),
    )


def drop_outbox_table(name: str = DEFAULT_OUTBOX_TABLE) -> None:
    op.drop_index(unpublished_index_name(name), table_name=name)
    op.drop_table(name)


def create_inbox_table(name: str) -> None:
    op.create_table(name, *inbox_elements(name))


def drop_inbox_table(name: str) -> None:
    op.drop_table(name)
