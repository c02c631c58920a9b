"""Alembic helpers: create the outbox and inbox tables in a service's own revision.

from shop_common.events.migrations import create_inbox_table, create_outbox_table

def upgrade() -> None:
    create_outbox_table()
    create_inbox_table("inbox_stock")
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import column

from shop_common.events.tables import (
    DEFAULT_OUTBOX_TABLE,
    inbox_elements,
    outbox_elements,
    request_key_index_name,
    unpublished_index_name,
)


def create_outbox_table(name: str = DEFAULT_OUTBOX_TABLE) -> None:
    """The outbox's first version. A revision never changes what it created, so each
    later change has its own helper, called after this one in the same order (a new
    service's first revision calls them all): add_outbox_request_key."""
    first = [item for item in outbox_elements(name) if getattr(item, "name", "") not in _LATER]
    op.create_table(name, *first)
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


def add_outbox_request_key(name: str = DEFAULT_OUTBOX_TABLE) -> None:
    """For an outbox created before request_key existed (a nullable column: no rewrite)."""
    op.add_column(name, sa.Column("request_key", sa.String(64), nullable=True))
    _create_request_key_index(name)


def drop_outbox_request_key(name: str = DEFAULT_OUTBOX_TABLE) -> None:
    op.drop_index(request_key_index_name(name), table_name=name)
    with op.batch_alter_table(name) as batch:  # SQLite before 3.35 cannot drop a column
        batch.drop_column("request_key")


def _create_request_key_index(name: str) -> None:
    op.create_index(request_key_index_name(name), name, ["request_key", "type"], unique=True)


# Columns added to the outbox after its first version, by their own helpers.
_LATER = frozenset({"request_key"})


def create_inbox_table(name: str) -> None:
    op.create_table(name, *inbox_elements(name))


def drop_inbox_table(name: str) -> None:
    op.drop_table(name)
