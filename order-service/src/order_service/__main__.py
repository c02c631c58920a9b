"""`python -m order_service serve | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from order_service.config import SERVICE_NAME, Settings
from order_service.db import migrate_database
from shop_common.logging import configure_logging
from shop_common.shutdown import serve

EXIT_FAILURE = 2


def main(argv: list[str] | None = None) -> int:
    """The command's exit status (0 on success), as auth-service's `main` returns."""
    parser = argparse.ArgumentParser(prog="order_service", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate"],
        help="serve (default): run the HTTP server; migrate: upgrade the database to head",
    )
    arguments = parser.parse_args(argv)
    settings = Settings()
    configure_logging(SERVICE_NAME, settings.log_level)
    if arguments.command == "migrate":
        try:
            asyncio.run(migrate_database(settings.database_url))
        except Exception as exc:  # any driver or migration error: one clear line, no traceback
            print(f"{SERVICE_NAME}: migration failed: {type(exc).__name__}: {exc}", file=sys.stderr)  # noqa: T201
            return EXIT_FAILURE
        print(f"{SERVICE_NAME}: database at the latest migration")  # noqa: T201
        return 0
    serve(
        "order_service.main:create_app",
        drain_seconds=settings.shutdown_drain_seconds,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        factory=True,
        host=settings.order_host,
        port=settings.order_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
