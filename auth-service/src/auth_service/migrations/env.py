"""Alembic environment of auth-service: its own version table (shop_common.migrate)."""

from __future__ import annotations

from auth_service import models  # noqa: F401  (registers the tables on Base.metadata)
from auth_service.config import Settings
from auth_service.db import VERSION_TABLE, Base
from shop_common.migrate import run_alembic_environment

run_alembic_environment(Base.metadata, VERSION_TABLE, default_url=lambda: Settings().database_url)
