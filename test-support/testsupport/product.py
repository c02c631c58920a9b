"""Helpers for product-service's own tests: a migrated database per backend, the app
in-process behind a client that mints the gateway's credential."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from product_service.config import SERVICE_NAME, Settings
from product_service.db import migrate_database
from product_service.main import create_app
from shop_common.credential import Role
from shop_common.testing import (
    GatewayKeys,
    fresh_postgres_database,
    postgres_base_url,
    random_sku,
    sqlite_url,
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


async def migrated_database(backend: str, directory: Path) -> AsyncIterator[str]:
    """A new database at the latest migration: a SQLite file, or a fresh PostgreSQL one."""
    if backend == "sqlite":
        url = sqlite_url(directory, f"{uuid.uuid4().hex}.db")
        await migrate_database(url)
        yield url
        return
    async with fresh_postgres_database(postgres_base_url()) as url:
        await migrate_database(url)
        yield url


@dataclass
class Shop:
    """The app in-process, and credentials as the gateway would mint them."""

    client: httpx.AsyncClient
    keys: GatewayKeys
    app: FastAPI

    def as_user(self, user_id: str | None = None, role: Role = "USER") -> dict[str, str]:
        return self.keys.headers(SERVICE_NAME, user_id=user_id or str(uuid.uuid4()), role=role)

    def as_admin(self) -> dict[str, str]:
        return self.as_user(role="ADMIN")

    def anonymous(self) -> dict[str, str]:
        return self.keys.headers(SERVICE_NAME)

    async def create(self, owner: dict[str, str], **fields: Any) -> dict[str, Any]:
        body = {"name": "Lamp", "price": 19.99, "sku": random_sku(), **fields}
        response = await self.client.post("/products", json=body, headers=owner)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


@asynccontextmanager
async def running_shop(url: str, keys: GatewayKeys, data_dir: Path) -> AsyncIterator[Shop]:
    """The app on this database, its lifespan running, behind an in-process client."""
    app = create_app(Settings(data_dir=data_dir, product_database_url=url, shop_testing=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://product", auth=keys.auth()
        ) as client:
            yield Shop(client=client, keys=keys, app=app)
