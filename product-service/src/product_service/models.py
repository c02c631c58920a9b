"""The product table, stock reservations, and the event outbox and inbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from product_service.db import Base
from product_service.prices import MAX_PRICE_CENTS
from shop_common.database import UtcDateTime
from shop_common.events import inbox_table, outbox_table

# The outbox of product-service's events and the inbox of its consumer of order events.
OUTBOX_TABLE = "product_outbox"
ORDERS_INBOX_TABLE = "product_inbox_orders"
# Reservation statuses: `held` reserves the lines' stock, `released` returned it (or, with
# no lines, is the tombstone of an order given up before it reserved anything).
HELD = "held"
RELEASED = "released"

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


class StockReservation(Base):
    """One order's reservation: its id claims the order, its status says where the stock is."""

    __tablename__ = "stock_reservation"

    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (CheckConstraint("status IN ('held', 'released')", name="status_known"),)


class StockReservationLine(Base):
    """A reserved line with the catalog as it was: the order keeps these, whatever changes."""

    __tablename__ = "stock_reservation_line"

    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("stock_reservation.order_id"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key: a product may be deleted while its units are reserved.
    product_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str | None] = mapped_column(String(64))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    quantity: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("quantity >= 1", name="quantity_positive"),)


outbox_table(Base.metadata, OUTBOX_TABLE)
inbox_table(Base.metadata, ORDERS_INBOX_TABLE)
