"""A serving process loads neither Alembic nor, without REDIS_URL, redis-py."""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread
import pytest

from shop_common.testing import packages_imported_by, write_gateway_keys

pytestmark = pytest.mark.anyio

SERVE = """
import asyncio
import httpx
import auth_service.__main__  # the command line, as `python -m auth_service` runs
from auth_service.config import Settings
from auth_service.main import create_app

async def main():
    settings = Settings(
        _env_file=None,
        data_dir={data_dir!r},
        auth_database_url={url!r},
        shop_testing=True,
        bcrypt_rounds=4,
        signing_key_activation_seconds=0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            ready = await client.get("/ready")
    assert ready.json()["checks"] == {{"database": "ok", "signing_keys": "ok"}}, ready.text

asyncio.run(main())
"""


async def test_serving_and_readiness_import_neither_alembic_nor_redis(
    database_url: str, tmp_path: Path
) -> None:
    write_gateway_keys(tmp_path)
    script = SERVE.format(data_dir=str(tmp_path), url=database_url)
    unset = ("REDIS_URL", "ADMIN_EMAIL", "ADMIN_PASSWORD")
    loaded = await anyio.to_thread.run_sync(lambda: packages_imported_by(script, unset=unset))
    assert "auth_service" in loaded
    assert {"alembic", "mako", "redis"} & loaded == set()
