"""stock reservations and events

Revision ID: product_0003
Revises: product_0002
Create Date: 2026-12-04 20:45:00

Reservations of stock per order (issue 14) with the catalog snapshot of each line, the
outbox of product-service's events and the inbox of its consumer of order events.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shop_common.events.migrations import (
    create_inbox_table,
    create_outbox_table,
    drop_inbox_table,
    drop_outbox_table,
)

revision: str = "product_0003"
down_revision: str | None = "product_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out, not imported: a migration stays as it was written when the models change.
OUTBOX_TABLE = "product_outbox"
ORDERS_INBOX_TABLE = "product_inbox_orders"


def upgrade() -> None:
    op.create_table(
        "stock_reservation",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('held', 'released')", name=op.f("ck_stock_reservation_status_known")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_stock_reservation")),
    )
    op.create_table(
        "stock_reservation_line",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "quantity >= 1", name=op.f("ck_stock_reservation_line_quantity_positive")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["stock_reservation.order_id"],
            name=op.f("fk_stock_reservation_line_order_id_stock_reservation"),
        ),
        sa.PrimaryKeyConstraint("order_id", "line_no", name=op.f("pk_stock_reservation_line")),
    )
    create_outbox_table(OUTBOX_TABLE)
    create_inbox_table(ORDERS_INBOX_TABLE)


def downgrade() -> None:
    drop_inbox_table(ORDERS_INBOX_TABLE)
    drop_outbox_table(OUTBOX_TABLE)
    op.drop_table("stock_reservation_line")
    op.drop_table("stock_reservation")
