"""outbox request key

Revision ID: product_0004
Revises: product_0003
Create Date: 2026-12-05 00:10:00

Each event records the credential id of the request that wrote it, so a write the gateway
sends again after its instance died is applied once (shop_common.retried_writes).
"""

from __future__ import annotations

from collections.abc import Sequence

from shop_common.events.migrations import add_outbox_request_key, drop_outbox_request_key

revision: str = "product_0004"
down_revision: str | None = "product_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTBOX_TABLE = "product_outbox"


def upgrade() -> None:
    add_outbox_request_key(OUTBOX_TABLE)


def downgrade() -> None:
    drop_outbox_request_key(OUTBOX_TABLE)
