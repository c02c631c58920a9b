"""Fixtures: a migrated database per backend, the app in-process, gateway credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shop_common.credential import CredentialSigner
from shop_common.testing import GatewayKeys, write_gateway_keys
from testsupport.product import (
    BACKENDS,
    Shop,
    migrated_database,
    running_shop,
    write_order_service_keys,
)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def order_service_keys(data_dir: Path) -> CredentialSigner:
    return write_order_service_keys(data_dir)


@pytest.fixture(scope="session")
def gateway_keys(data_dir: Path, order_service_keys: CredentialSigner) -> GatewayKeys:
    """The gateway's key pair; order-service's is written beside it, since create_app
    reads both public keys."""
    del order_service_keys
    return write_gateway_keys(data_dir)


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """One database per backend for the whole run; tests use unique data, never cleanup."""
    async for url in migrated_database(request.param, tmp_path_factory.mktemp("db")):
        yield url


@pytest.fixture
async def shop(database_url: str, gateway_keys: GatewayKeys, data_dir: Path) -> AsyncIterator[Shop]:
    async with running_shop(database_url, gateway_keys, data_dir) as running:
        yield running
