"""The outbox and inbox tables, defined once for a service's metadata and its migration.

A service adds `outbox_table(Base.metadata)` (and one `inbox_table` per consumer) to its
models and creates them in an Alembic revision with `shop_common.events.migrations`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    column,
)
from sqlalchemy.sql.schema import SchemaItem

from shop_common.database import UtcDateTime

DEFAULT_OUTBOX_TABLE = "event_outbox"


def outbox_elements(name: str) -> list[SchemaItem]:
    """Columns and named constraints: the same names in the models and the migration."""
    return [
        # The publishing order. BIGINT on PostgreSQL; SQLite autoincrements INTEGER only.
        Column(
            "position",
            BigInteger().with_variant(Integer(), "sqlite"),
            autoincrement=True,
        ),
        Column("id", String(36), nullable=False),
        Column("type", String(200), nullable=False),
        Column("source", String(100), nullable=False),
        Column("subject", String(255), nullable=False),
        Column("occurred_at", UtcDateTime(), nullable=False),
        Column("data", Text(), nullable=False),
        Column("traceparent", String(55), nullable=True),
        Column("published_at", UtcDateTime(), nullable=True),
        # The credential id of the request that wrote it (none for background work): how a
        # write the gateway sends again is recognised (shop_common.retried_writes).
        Column("request_key", String(64), nullable=True),
        PrimaryKeyConstraint("position", name=f"pk_{name}"),
        UniqueConstraint("id", name=f"uq_{name}_id"),
    ]


def unpublished_index_name(name: str) -> str:
    return f"ix_{name}_unpublished"


def request_key_index_name(name: str) -> str:
    return f"ix_{name}_request_key"


def outbox_table(metadata: MetaData, name: str = DEFAULT_OUTBOX_TABLE) -> Table:
    """The transactional outbox: one row per event, written in the change's transaction."""
    table = Table(name, metadata, *outbox_elements(name))
    # The relay reads only unpublished rows: a partial index keeps that read small however
    # many published rows are kept.
    Index(
        unpublished_index_name(name),
        table.c.position,
        postgresql_where=column("published_at").is_(None),
        sqlite_where=column("published_at").is_(None),
    )
    # One event of a kind per request: two attempts of one write can never both commit.
    # Rows without a key (NULL) never collide.
    Index(request_key_index_name(name), table.c.request_key, table.c.type, unique=True)
    return table


def inbox_elements(name: str) -> list[SchemaItem]:
    return [
        Column("event_id", String(36), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("received_at", UtcDateTime(), nullable=False),
        PrimaryKeyConstraint("event_id", name=f"pk_{name}"),
    ]


def inbox_table(metadata: MetaData, name: str) -> Table:
    """A consumer's inbox: the ids of the events it applied, committed with their effect."""
    return Table(name, metadata, *inbox_elements(name))
