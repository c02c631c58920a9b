"""Migrate several services' databases in one interpreter: `make run`'s first start.

`python scripts/migrate.py auth-service product-service` runs what `python -m
auth_service migrate` and then `python -m product_service migrate` run (their own `main`),
so Python, SQLAlchemy and Alembic are loaded once, not once per service
(docs/decisions/launcher-start-time.md). Deployments keep the per-service commands.
"""

from __future__ import annotations

import importlib
import sys
import traceback

from shop_common.services import service_named


def main(services: list[str]) -> int:
    """Each service's migration, even after another failed; the first failure's status."""
    failed = 0
    for service in services:
        command = importlib.import_module(f"{service_named(service).package}.__main__")
        try:
            # Every service's main returns its exit status, as under `python -m`.
            status = int(command.main(["migrate"]))
        except Exception:  # a bug in one service's command must not stop the others'
            traceback.print_exc()
            status = 1
        failed = failed or status
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
