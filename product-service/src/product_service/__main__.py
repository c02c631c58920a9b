"""`python -m product_service serve | migrate` (shop_common.cli)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from product_service.config import SERVICE_NAME, Settings
from product_service.db import migrate_database
from shop_common.cli import service_command


def main(argv: Sequence[str] | None = None) -> int:
    """The command's exit status (0 on success), as auth-service's `main` returns."""
    return service_command(
        argv,
        name=SERVICE_NAME,
        settings=Settings,
        app_factory="product_service.main:create_app",
        listen=lambda settings: (settings.product_host, settings.product_port),
        database_url=lambda settings: settings.database_url,
        migrate=migrate_database,
    )


if __name__ == "__main__":
    sys.exit(main())
