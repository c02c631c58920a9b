"""accounts and sessions

Revision ID: c96923d45af4
Revises:
Create Date: 2026-11-25 07:04:21.348045
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c96923d45af4"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written by hand from the models of that day, so later model changes never alter it.
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=5), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("role IN ('USER', 'ADMIN')", name=op.f("ck_account_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("email", name=op.f("uq_account_email")),
    )
    op.create_index("ix_account_created_at_id", "account", ["created_at", "id"])
    op.create_index("ix_account_role", "account", ["role"])

    op.create_table(
        "login_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("refresh_token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_used_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_login_session_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_session")),
        sa.UniqueConstraint("refresh_token_hash", name=op.f("uq_login_session_refresh_token_hash")),
    )
    op.create_index(op.f("ix_login_session_account_id"), "login_session", ["account_id"])
    op.create_index(op.f("ix_login_session_revoked_at"), "login_session", ["revoked_at"])

    op.create_table(
        "used_refresh_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("used_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["login_session.id"],
            name=op.f("fk_used_refresh_token_session_id_login_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_used_refresh_token")),
    )
    op.create_index(op.f("ix_used_refresh_token_session_id"), "used_refresh_token", ["session_id"])


def downgrade() -> None:
    op.drop_table("used_refresh_token")
    op.drop_table("login_session")
    op.drop_table("account")
