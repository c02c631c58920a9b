"""Helpers for product-service's own tests: a migrated database per backend, the app
in-process behind a client that mints the gateway's credential."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI

from product_service.config import SERVICE_NAME, Settings
from product_service.consumers import EventWiring
from product_service.db import migrate_database
from product_service.main import create_app
from shop_common.credential import CREDENTIAL_HEADER, Caller, CredentialSigner, Role
from shop_common.testing import (
    GatewayKeys,
    binding_of,
    random_sku,
    write_credential_keys,
)
from testsupport import databases
from testsupport.databases import BACKENDS as BACKENDS  # product-service's tests use it

if TYPE_CHECKING:
    from shop_common.tracing import Tracing

ORDER_SERVICE = "order-service"


async def migrated_database(backend: str, directory: Path) -> AsyncGenerator[str, None]:
    """A new product-service database at the latest migration, on `backend`."""
    async for url in databases.migrated_database(backend, directory, migrate_database):
        yield url


class CallerAuth(httpx.Auth):
    """Signs each request as another service would: its own key, this one request."""

    def __init__(self, signer: CredentialSigner, caller: Caller | None = None) -> None:
        self.signer = signer
        self.caller = caller or Caller(user_id=str(uuid.uuid4()), role="USER")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.headers["x-request-id"] = request_id
        request.headers[CREDENTIAL_HEADER] = self.signer.mint(
            audience=SERVICE_NAME, caller=self.caller, request=binding_of(request, request_id)
        )
        yield request


def write_order_service_keys(data_dir: Path) -> CredentialSigner:
    """order-service's key pair under data_dir/keys/order-service, as make run does."""
    return write_credential_keys(data_dir, ORDER_SERVICE)


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
async def running_shop(
    url: str,
    keys: GatewayKeys,
    data_dir: Path,
    *,
    nats_url: str | None = None,
    events: EventWiring | None = None,
    tracing: Tracing | None = None,
    **overrides: Any,
) -> AsyncIterator[Shop]:
    """The app on this database, its lifespan running, behind an in-process client;
    `overrides` are further settings.

    order-service's public key must be under data_dir too (write_order_service_keys).
    """
    settings = Settings(
        data_dir=data_dir,
        product_database_url=url,
        shop_testing=True,
        nats_url=nats_url,
        **overrides,
    )
    app = create_app(settings, events=events, tracing=tracing)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://product", auth=keys.auth()
        ) as client:
            yield Shop(client=client, keys=keys, app=app)
