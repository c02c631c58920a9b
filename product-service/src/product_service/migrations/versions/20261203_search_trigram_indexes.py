"""search trigram indexes (PostgreSQL)

Revision ID: product_0002
Revises: product_0001
Create Date: 2026-12-03 07:50:00

`q` matches `name_lower LIKE '%word%' OR description_lower LIKE '%word%'`. Without an index
a word few products contain makes PostgreSQL read the whole table (22 ms at 100,000 rows,
ten times that at a million, for any client who asks); with pg_trgm's GIN indexes the same
query reads only the matches (0.1 ms). SQLite has no such index: nothing to do there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "product_0002"
down_revision: str | None = "product_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out, not imported: a migration stays as it was written when the models change.
SEARCHED_COLUMNS = ("name_lower", "description_lower")
logger = logging.getLogger(__name__)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).scalar()
    if not available:
        # Search stays correct, only slower for rare words; installing the server's
        # contrib package and creating these indexes by hand adds it later.
        logger.warning(
            "pg_trgm is not available on this PostgreSQL server: search (q) runs without "
            "trigram indexes"
        )
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in SEARCHED_COLUMNS:
        op.create_index(
            op.f(f"ix_product_{column}_trgm"),
            "product",
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in reversed(SEARCHED_COLUMNS):
        op.execute(f"DROP INDEX IF EXISTS ix_product_{column}_trgm")
