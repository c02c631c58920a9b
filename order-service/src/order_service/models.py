"""The order-service tables: orders, their lines, idempotency keys; the outbox beside them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from order_service.db import Base
from shop_common.database import UtcDateTime
from shop_common.events import outbox_table

OUTBOX_TABLE = "order_outbox"
# An integer key that is a rowid alias on SQLite (autoincrement there) and a BIGINT
# identity on PostgreSQL: the order's public `number`.
NumberType = BigInteger().with_variant(Integer(), "sqlite")


class Status:
    """The lifecycle; RESERVING and ABORTED are a checkout's own and never shown."""

    RESERVING = "reserving"
    ABORTED = "aborted"
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    PUBLIC = (PENDING_PAYMENT, PAID, SHIPPED, CANCELLED, EXPIRED)


class PurchaseOrder(Base):
    __tablename__ = "purchase_order"
    __table_args__ = (
        CheckConstraint("total_cents >= 0", name="total_not_negative"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index(None, "user_id", "number"),
        Index(None, "status", "number"),
        Index(None, "status", "expires_at"),
        {"sqlite_autoincrement": True},  # numbers never reused
    )

    number: Mapped[int] = mapped_column(NumberType, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(unique=True)
    user_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str | None] = mapped_column(String(3))
    total_cents: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    payment_reference: Mapped[str | None] = mapped_column(String(200))
    carrier: Mapped[str | None] = mapped_column(String(100))
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    shipped_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int]

    lines: Mapped[list[OrderLine]] = relationship(
        order_by="OrderLine.line_no", lazy="raise", cascade="all, delete-orphan"
    )


class OrderLine(Base):
    __tablename__ = "purchase_order_line"
    __table_args__ = (
        CheckConstraint("quantity BETWEEN 1 AND 1000", name="quantity_range"),
        CheckConstraint("unit_price_cents >= 0", name="unit_price_not_negative"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("purchase_order.id", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str | None] = mapped_column(String(64))
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int]
    line_total_cents: Mapped[int] = mapped_column(BigInteger)


class IdempotencyKey(Base):
    """A client's Idempotency-Key: claimed with the checkout, then the answer to replay."""

    __tablename__ = "order_idempotency_key"
    __table_args__ = (Index(None, "created_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[uuid.UUID]
    # NULL while the checkout runs; then the answer, replayed byte for byte.
    response_status: Mapped[int | None]
    response_headers: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


order_outbox = outbox_table(Base.metadata, OUTBOX_TABLE)
