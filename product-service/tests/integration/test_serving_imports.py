"""A serving process never loads Alembic: readiness reads revisions from the files."""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread
import pytest

from shop_common.testing import GatewayKeys, packages_imported_by

pytestmark = pytest.mark.anyio

SERVE = """
import asyncio
import httpx
import product_service.__main__  # the command line, as `python -m product_service` runs
from product_service.config import Settings
from product_service.main import create_app

async def main():
    settings = Settings(data_dir={data_dir!r}, product_database_url={url!r}, shop_testing=True)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://product") as client:
            ready = await client.get("/ready")
    assert ready.json()["checks"] == {{"database": "ok"}}, ready.text

asyncio.run(main())
"""


async def test_serving_and_readiness_never_import_alembic(
    database_url: str, gateway_keys: GatewayKeys, data_dir: Path
) -> None:
    del gateway_keys  # written under data_dir, where create_app reads the public key
    script = SERVE.format(data_dir=str(data_dir), url=database_url)
    loaded = await anyio.to_thread.run_sync(packages_imported_by, script)
    assert "product_service" in loaded
    assert {"alembic", "mako"} & loaded == set()
