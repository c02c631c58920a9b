"""The command line every service has: `python -m <package> serve | migrate`.

Each service's __main__ passes its own pieces; the commands return an exit status (0 on
success), which `scripts/migrate.py` and the images rely on.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from shop_common.logging import configure_logging
from shop_common.settings import ServiceSettings

EXIT_FAILURE = 2
S = TypeVar("S", bound=ServiceSettings)


def service_command(
    argv: Sequence[str] | None,
    *,
    name: str,
    settings: Callable[[], S],
    app_factory: str,
    listen: Callable[[S], tuple[str, int]],
    database_url: Callable[[S], str],
    migrate: Callable[[str], Coroutine[Any, Any, None]],
) -> int:
    """Run `serve` (the default: the app from `app_factory`, "package.main:create_app") or
    `migrate` (the database to its latest migration)."""
    package = app_factory.split(".", 1)[0]
    parser = argparse.ArgumentParser(prog=package, description=f"{name}: serve or migrate")
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate"],
        help="serve (default): run the HTTP server; migrate: upgrade the database to head",
    )
    arguments = parser.parse_args(argv)
    current = settings()
    configure_logging(name, current.log_level)
    if arguments.command == "migrate":
        try:
            asyncio.run(migrate(database_url(current)))
        except Exception as exc:  # any driver or migration error: one clear line, no traceback
            print(f"{name}: migration failed: {type(exc).__name__}: {exc}", file=sys.stderr)  # noqa: T201
            return EXIT_FAILURE
        print(f"{name}: database at the latest migration")  # noqa: T201
        return 0
    if current.web_concurrency > 1 and database_url(current).startswith("sqlite"):
        # SQLite serialises the outbox relay with an in-process lock (events-outbox.md):
        # two processes would publish events out of order.
        print(  # noqa: T201
            f"{name}: WEB_CONCURRENCY={current.web_concurrency} needs PostgreSQL; "
            "SQLite runs one process",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    from shop_common.shutdown import serve

    host, port = listen(current)
    return serve(
        app_factory,
        drain_seconds=current.shutdown_drain_seconds,
        timeout_graceful_shutdown=current.shutdown_timeout_seconds,
        workers=current.web_concurrency,
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
    )
