"""The product table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from product_service.db import Base
from product_service.prices import MAX_PRICE_CENTS
from shop_common.database import UtcDateTime

# Columns `q` searches; on PostgreSQL each has a trigram index, ix_product_<column>_trgm.
SEARCHED_COLUMNS = ("name_lower", "description_lower")


class Product(Base):
    __tablename__ = "product"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Case-folded copies, computed in Python: the same folding on SQLite and PostgreSQL
    # (SQLite's lower() only knows ASCII), and an index for the case-insensitive name sort.
    name_lower: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    description_lower: Mapped[str] = mapped_column(Text)
    # Integer minor units: exact on both databases (SQLite has no exact NUMERIC storage).
    price_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str | None] = mapped_column(String(64), unique=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint(f"price_cents BETWEEN 0 AND {MAX_PRICE_CENTS}", name="price_range"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("version >= 1", name="version_positive"),
        # One index per sort order of GET /products, plain and within one owner;
        # the trailing id makes each key unique, which keyset paging relies on.
        Index(None, "created_at", "id"),
        Index(None, "price_cents", "id"),
        Index(None, "name_lower", "id"),
        Index(None, "owner_id", "created_at", "id"),
        Index(None, "owner_id", "price_cents", "id"),
        Index(None, "owner_id", "name_lower", "id"),
        # Search (q, LIKE '%word%'): trigram indexes on PostgreSQL, so a rare word reads
        # its matches, not the table. SQLite has no equivalent (migration product_0002).
        *(
            Index(
                f"ix_product_{column}_trgm",
                column,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
                info={"dialect": "postgresql"},
            ).ddl_if(dialect="postgresql")
            for column in SEARCHED_COLUMNS
        ),
    )
