"""Without REDIS_URL the gateway never loads redis-py (~7 MB of a process's memory)."""

from __future__ import annotations

from pathlib import Path

from shop_common.testing import packages_imported_by

SERVE = """
import asyncio
import api_gateway.__main__  # the command line, as `python -m api_gateway` runs
from api_gateway.config import Settings
from api_gateway.main import create_app

async def main():
    settings = Settings(
        data_dir={data_dir!r},
        auth_service_url="http://127.0.0.1:9",
        product_service_url="http://127.0.0.1:9",
        redis_url={redis_url!r},
    )
    async with create_app(settings).running():
        pass

asyncio.run(main())
"""


def test_serving_without_redis_url_never_imports_redis(tmp_path: Path) -> None:
    script = SERVE.format(data_dir=str(tmp_path), redis_url=None)
    loaded = packages_imported_by(script, unset=("REDIS_URL",))
    assert "api_gateway" in loaded
    assert "redis" not in loaded


def test_serving_with_redis_url_imports_redis(tmp_path: Path) -> None:
    # Redis need not answer: the link only connects when first used.
    script = SERVE.format(data_dir=str(tmp_path), redis_url="redis://127.0.0.1:9/0")
    assert "redis" in packages_imported_by(script)


def test_serving_never_imports_sqlalchemy(tmp_path: Path) -> None:
    """The gateway has no database; the guard code it shares with services (the request
    deadline) must not pull the ORM into its memory."""
    script = SERVE.format(data_dir=str(tmp_path), redis_url=None)
    assert "sqlalchemy" not in packages_imported_by(script, unset=("REDIS_URL",))
