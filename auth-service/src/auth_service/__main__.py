"""Command line: `python -m auth_service serve | migrate | keys init | keys rotate`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import timedelta

from pydantic import ValidationError

from auth_service.audit import security_event
from auth_service.bootstrap import StartupError
from auth_service.config import Settings
from auth_service.signing_keys import ensure_key, key_ids, rotate_keys
from shop_common.logging import configure_logging

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth_service", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the HTTP service (the default)")
    commands.add_parser("migrate", help="bring the database schema to the latest migration")
    keys = commands.add_parser("keys", help="manage the token signing keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    key_commands.add_parser("init", help="create the first signing key if there is none")
    key_commands.add_parser("rotate", help="add a signing key and prune expired ones")
    args = parser.parse_args(argv)

    try:
        settings = Settings()
    except ValidationError as exc:
        return _fail("invalid settings:\n" + _describe(exc))
    configure_logging("auth-service", settings.log_level)
    try:
        if args.command == "migrate":
            return _migrate(settings)
        if args.command == "keys":
            return _keys(settings, args.keys_command)
        return _serve(settings)
    except StartupError as exc:
        return _fail(str(exc))


def _serve(settings: Settings) -> int:
    from auth_service.main import create_app
    from shop_common.shutdown import serve

    app = create_app(settings)
    serve(
        app,
        drain_seconds=settings.shutdown_drain_seconds,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        host=settings.auth_host,
        port=settings.auth_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        server_header=False,
    )
    return 0


def _migrate(settings: Settings) -> int:
    from auth_service.db import migrate_database

    try:
        asyncio.run(migrate_database(settings.database_url))
    except Exception as exc:  # any driver or migration error: one clear line, no traceback
        return _fail(f"migration failed: {type(exc).__name__}: {exc}")
    print("auth-service: database at the latest migration")  # noqa: T201
    return 0


def _keys(settings: Settings, command: str) -> int:
    directory = settings.keys_dir
    try:
        if command == "init":
            created = ensure_key(directory)
            if created is not None:
                security_event("signing_key_created", kid=created)
            kid = created or key_ids(directory)[-1]
            state = "created" if created else "already present"
            print(f"auth-service: signing key {kid} {state} in {directory}")  # noqa: T201
            return 0
        # A key stops signing once its successor is active everywhere (activation delay
        # plus one reload); its tokens live for one more access-token lifetime.
        retain = timedelta(
            seconds=settings.signing_key_activation_seconds
            + settings.signing_key_reload_seconds
            + settings.access_token_ttl_seconds
        )
        kid, pruned = rotate_keys(directory, retain=retain)
    except OSError as exc:
        return _fail(f"cannot use the signing key directory {directory}: {exc}")
    security_event("signing_key_rotated", kid=kid, pruned=pruned)
    print(f"auth-service: new signing key {kid}; pruned {', '.join(pruned) or 'none'}")  # noqa: T201
    return 0


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        lines.append(f"  {field.upper()}: {error['msg']}")
    return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"auth-service: {message}", file=sys.stderr)  # noqa: T201
    return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
