"""create purchase_order, its lines, idempotency keys and the outbox

Revision ID: order_0001
Revises:
Create Date: 2026-12-04 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shop_common.events.migrations import create_outbox_table, drop_outbox_table

revision: str = "order_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTBOX_TABLE = "order_outbox"
ORDER_INDEXES = (("user_id", "number"), ("status", "number"), ("status", "expires_at"))


def upgrade() -> None:
    op.create_table(
        "purchase_order",
        sa.Column(
            "number",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("payment_reference", sa.String(length=200), nullable=True),
        sa.Column("carrier", sa.String(length=100), nullable=True),
        sa.Column("tracking_number", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("total_cents >= 0", name=op.f("ck_purchase_order_total_not_negative")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_purchase_order_version_positive")),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_purchase_order")),
        sa.UniqueConstraint("id", name=op.f("uq_purchase_order_id")),
        sqlite_autoincrement=True,
    )
    for columns in ORDER_INDEXES:
        op.create_index(
            op.f(f"ix_purchase_order_{'_'.join(columns)}"), "purchase_order", list(columns)
        )
    op.create_table(
        "purchase_order_line",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("line_total_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "quantity BETWEEN 1 AND 1000", name=op.f("ck_purchase_order_line_quantity_range")
        ),
        sa.CheckConstraint(
            "unit_price_cents >= 0",
            name=op.f("ck_purchase_order_line_unit_price_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["purchase_order.id"],
            name=op.f("fk_purchase_order_line_order_id_purchase_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", "line_no", name=op.f("pk_purchase_order_line")),
    )
    op.create_table(
        "order_idempotency_key",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_order_idempotency_key")),
    )
    op.create_index(
        op.f("ix_order_idempotency_key_created_at"), "order_idempotency_key", ["created_at"]
    )
    create_outbox_table(OUTBOX_TABLE)


def downgrade() -> None:
    drop_outbox_table(OUTBOX_TABLE)
    op.drop_index(op.f("ix_order_idempotency_key_created_at"), table_name="order_idempotency_key")
    op.drop_table("order_idempotency_key")
    op.drop_table("purchase_order_line")
    for columns in reversed(ORDER_INDEXES):
        op.drop_index(op.f(f"ix_purchase_order_{'_'.join(columns)}"), table_name="purchase_order")
    op.drop_table("purchase_order")
