"""Tables: accounts, their login sessions, and the refresh tokens a session has used up."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.db import Base
from shop_common.database import UtcDateTime

Role = Literal["USER", "ADMIN"]
ROLES: tuple[Role, ...] = ("USER", "ADMIN")


class Account(Base):
    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint("role IN ('USER', 'ADMIN')", name="role"),
        # Keyset paging of GET /auth/users walks this index.
        Index("ix_account_created_at_id", "created_at", "id"),
        Index("ix_account_role", "role"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    # Stored lower-cased, so a plain unique constraint is case-insensitive uniqueness.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LoginSession(Base):
    """One login: its id is the access tokens' `sid`; it holds the current refresh token."""

    __tablename__ = "login_session"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the refresh token currently valid for this session; never the token.
    refresh_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The absolute end of the session; the idle limit is counted from last_used_at.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Indexed for the gateways' revocation poll ("revoked since ...").
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)


class UsedRefreshToken(Base):
    """Every refresh token a session has rotated away from: presenting one again is reuse."""

    __tablename__ = "used_refresh_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("login_session.id", ondelete="CASCADE"), index=True
    )
    used_at: Mapped[datetime] = mapped_column(UtcDateTime)
