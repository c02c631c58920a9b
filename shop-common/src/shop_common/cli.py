"""The command line every service has: `python -m <package> serve | migrate`, plus any
commands of its own (auth-service's `keys init | rotate`).

Each service's __main__ passes its own pieces; the commands return an exit status (0 on
success, 2 with one line on stderr when the operator must fix something), which
`scripts/migrate.py` and the images rely on.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from shop_common.logging import configure_logging
from shop_common.settings import ServiceSettings

EXIT_FAILURE = 2
S = TypeVar("S", bound=ServiceSettings)


class CommandFailed(Exception):
    """What the operator must fix, said in one line: exit status 2, no traceback."""


@dataclass(frozen=True, slots=True)
class ExtraCommand(Generic[S]):
    """A service's own command beside serve and migrate.

    `arguments` adds its arguments (or subcommands) to its parser; `run` gets the
    settings and the parsed arguments, returns the exit status, and raises CommandFailed
    for a one-line failure.
    """

    help: str
    run: Callable[[S, argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] | None = None


def service_command(
    argv: Sequence[str] | None,
    *,
    name: str,
    settings: Callable[[], S],
    app_factory: str,
    listen: Callable[[S], tuple[str, int]],
    database_url: Callable[[S], str],
    migrate: Callable[[str], Coroutine[Any, Any, None]],
    check_startup: Callable[[S], object] | None = None,
    commands: Mapping[str, ExtraCommand[S]] | None = None,
) -> int:
    """Run `serve` (the default: the app from `app_factory`, "package.main:create_app"),
    `migrate` (the database to its latest migration) or one of `commands`.

    `check_startup` runs before serving: a CommandFailed from it (a missing key, an
    unusable setting) is reported in one line instead of uvicorn's traceback.
    """
    extra = dict(commands or {})
    package = app_factory.split(".", 1)[0]
    parser = argparse.ArgumentParser(
        prog=f"python -m {package}",
        description=f"{name}: {' | '.join(['serve', 'migrate', *extra])}",
    )
    subcommands = parser.add_subparsers(dest="command", metavar="command")
    subcommands.add_parser("serve", help="run the HTTP server (the default)")
    subcommands.add_parser("migrate", help="upgrade the database to the latest migration")
    for command_name, command in extra.items():
        command_parser = subcommands.add_parser(command_name, help=command.help)
        if command.arguments is not None:
            command.arguments(command_parser)
    arguments = parser.parse_args(argv)

    try:
        current = settings()
    except ValidationError as exc:
        return _fail(name, "invalid settings:\n" + _describe(exc))
    configure_logging(name, current.log_level)
    try:
        if arguments.command == "migrate":
            return _migrate(name, migrate, database_url(current))
        if arguments.command in extra:
            return extra[arguments.command].run(current, arguments)
        if current.web_concurrency > 1 and database_url(current).startswith("sqlite"):
            # SQLite serialises the outbox relay with an in-process lock (events-outbox.md):
            # two processes would publish events out of order.
            raise CommandFailed(
                f"WEB_CONCURRENCY={current.web_concurrency} needs PostgreSQL; "
                "SQLite runs one process"
            )
        if check_startup is not None:
            check_startup(current)
    except CommandFailed as exc:
        return _fail(name, str(exc))
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
        # Which server (and version) answers is nobody's business (the gateway drops it too).
        server_header=False,
    )


def _migrate(name: str, migrate: Callable[[str], Coroutine[Any, Any, None]], url: str) -> int:
    try:
        asyncio.run(migrate(url))
    except Exception as exc:  # any driver or migration error: one clear line, no traceback
        return _fail(name, f"migration failed: {type(exc).__name__}: {exc}")
    print(f"{name}: database at the latest migration")  # noqa: T201
    return 0


def _describe(exc: ValidationError) -> str:
    # Named as the environment variables are (the fields are their lower-cased names).
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        lines.append(f"  {field.upper()}: {error['msg']}")
    return "\n".join(lines)


def _fail(name: str, message: str) -> int:
    print(f"{name}: {message}", file=sys.stderr)  # noqa: T201
    return EXIT_FAILURE
