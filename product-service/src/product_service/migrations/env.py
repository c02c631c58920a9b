"""Alembic environment of product-service: its own version table (shop_common.migrate)."""

from __future__ import annotations

from product_service import models  # noqa: F401  (registers the tables on Base.metadata)
from product_service.config import Settings
from product_service.db import VERSION_TABLE, Base
from shop_common.migrate import run_alembic_environment

run_alembic_environment(Base.metadata, VERSION_TABLE, default_url=lambda: Settings().database_url)
