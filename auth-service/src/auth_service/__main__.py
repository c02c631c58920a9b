"""`python -m auth_service serve | migrate | keys init | keys rotate` (shop_common.cli)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import timedelta

from auth_service.audit import security_event
from auth_service.config import SERVICE_NAME, Settings
from auth_service.db import migrate_database
from auth_service.signing_keys import ensure_key, key_ids, rotate_keys
from shop_common.cli import CommandFailed, ExtraCommand, service_command


def main(argv: Sequence[str] | None = None) -> int:
    """The command's exit status: 0, or 2 with one line on stderr."""
    return service_command(
        argv,
        name=SERVICE_NAME,
        settings=Settings,
        app_factory="auth_service.main:create_app",
        listen=lambda settings: (settings.auth_host, settings.auth_port),
        database_url=lambda settings: settings.database_url,
        migrate=migrate_database,
        check_startup=_check_startup,
        commands={
            "keys": ExtraCommand(
                help="manage the token signing keys", run=_keys, arguments=_key_commands
            )
        },
    )


def _check_startup(settings: Settings) -> None:
    # create_app refuses unusable ADMIN_* settings, a missing gateway key or signing key
    # directory with a StartupError; building it once here says so in one line.
    from auth_service.main import create_app

    create_app(settings)


def _key_commands(parser: argparse.ArgumentParser) -> None:
    key_commands = parser.add_subparsers(dest="keys_command", required=True)
    key_commands.add_parser("init", help="create the first signing key if there is none")
    key_commands.add_parser("rotate", help="add a signing key and prune expired ones")


def _keys(settings: Settings, arguments: argparse.Namespace) -> int:
    directory = settings.keys_dir
    try:
        if arguments.keys_command == "init":
            created = ensure_key(directory)
            if created is not None:
                security_event("signing_key_created", kid=created)
            kid = created or key_ids(directory)[-1]
            state = "created" if created else "already present"
            print(f"{SERVICE_NAME}: signing key {kid} {state} in {directory}")  # noqa: T201
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
        raise CommandFailed(f"cannot use the signing key directory {directory}: {exc}") from None
    security_event("signing_key_rotated", kid=kid, pruned=pruned)
    print(f"{SERVICE_NAME}: new signing key {kid}; pruned {', '.join(pruned) or 'none'}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
