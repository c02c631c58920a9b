"""`python -m order_service serve | migrate` (shop_common.cli)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from order_service.config import SERVICE_NAME, Settings
from order_service.db import migrate_database
from shop_common.cli import service_command


def main(argv: Sequence[str] | None = None) -> int:
    """The command's exit status (0 on success), as auth-service's `main` returns."""
    return service_command(
        argv,
        name=SERVICE_NAME,
        settings=Settings,
        app_factory="order_service.main:create_app",
        listen=lambda settings: (settings.order_host, settings.order_port),
        database_url=lambda settings: settings.database_url,
        migrate=migrate_database,
    )


if __name__ == "__main__":
    sys.exit(main())
