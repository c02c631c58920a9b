"""create product

Revision ID: product_0001
Revises:
Create Date: 2026-11-25 07:06:37.063560
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "product_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (columns) of each index GET /products needs: one per sort, plain and per owner.
LIST_INDEXES = (
    ("created_at", "id"),
    ("price_cents", "id"),
    ("name_lower", "id"),
    ("owner_id", "created_at", "id"),
    ("owner_id", "price_cents", "id"),
    ("owner_id", "name_lower", "id"),
)


def upgrade() -> None:
    op.create_table(
        "product",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_lower", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("description_lower", sa.Text(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "price_cents BETWEEN 0 AND 100000000000", name=op.f("ck_product_price_range")
        ),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_product_stock_not_negative")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_product_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product")),
        sa.UniqueConstraint("sku", name=op.f("uq_product_sku")),
    )
    for columns in LIST_INDEXES:
        op.create_index(op.f(f"ix_product_{'_'.join(columns)}"), "product", list(columns))


def downgrade() -> None:
    for columns in reversed(LIST_INDEXES):
        op.drop_index(op.f(f"ix_product_{'_'.join(columns)}"), table_name="product")
    op.drop_table("product")
