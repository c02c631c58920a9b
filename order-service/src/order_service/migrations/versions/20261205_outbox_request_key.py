"""outbox request key

Revision ID: order_0002
Revises: order_0001
Create Date: 2026-12-05 00:10:00

Each event records the credential id of the request that wrote it, so a write the gateway
sends again after its instance died is applied once (shop_common.retried_writes).
"""

from __future__ import annotations

from collections.abc import Sequence

from shop_common.events.migrations import add_outbox_request_key, drop_outbox_request_key

revision: str = "order_0002"
down_revision: str | None = "order_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTBOX_TABLE = "order_outbox"


def upgrade() -> None:
    add_outbox_request_key(OUTBOX_TABLE)


def downgrade() -> None:
    drop_outbox_request_key(OUTBOX_TABLE)
