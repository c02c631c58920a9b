"""Fixtures: a database per test (SQLite, and PostgreSQL when TEST_POSTGRES_URL is set),
gateway keys, and the app in-process behind httpx with gateway credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from auth_service.config import Settings
from auth_service.db import migrate_database
from auth_service.main import create_app
from shop_common.testing import (
    GatewayKeys,
    fresh_postgres_database,
    postgres_base_url,
    random_email,
    sqlite_url,
    write_gateway_keys,
)

AUDIENCE = "auth-service"
PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "admin password 1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no tables yet."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    async with fresh_postgres_database(postgres_base_url()) as url:
        yield url


@pytest.fixture
async def database_url(empty_database_url: str) -> str:
    """A database migrated to the latest revision."""
    await migrate_database(empty_database_url)
    return empty_database_url


@pytest.fixture
async def other_empty_database_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A second, unmigrated database on the same backend as `database_url`."""
    if database_url.startswith("sqlite"):
        yield sqlite_url(tmp_path, "other.db")
        return
    async with fresh_postgres_database(postgres_base_url()) as url:
        yield url


@pytest.fixture
def gateway(tmp_path: Path) -> GatewayKeys:
    return write_gateway_keys(tmp_path)


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "auth_database_url": database_url,
            "shop_testing": True,
            "bcrypt_rounds": 4,
            "signing_key_activation_seconds": 0,
            "admin_email": None,
            "admin_password": None,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


class AnonymousGateway(httpx.Auth):
    """Mints each request's gateway credential, as the gateway would (anonymous by default)."""

    def __init__(self, gateway: GatewayKeys) -> None:
        self.gateway = gateway

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # A credential for this very request: the caller its headers name, else anonymous.
        self.gateway.sign(request, AUDIENCE)
        yield request


@dataclass
class AuthApi:
    """The app in-process: `client` goes through a fake gateway, `direct` does not."""

    PASSWORD = PASSWORD
    ADMIN_PASSWORD = ADMIN_PASSWORD

    app: FastAPI
    settings: Settings
    gateway: GatewayKeys
    client: httpx.AsyncClient
    direct: httpx.AsyncClient

    def caller(
        self, user_id: str | None = None, role: str | None = None, session_id: str | None = None
    ) -> dict[str, str]:
        return self.gateway.headers(
            AUDIENCE,
            user_id=user_id,
            role=role,  # type: ignore[arg-type]
            session_id=session_id,
        )

    def bearer(self, tokens: dict[str, Any]) -> dict[str, str]:
        """What the gateway forwards for a request carrying this access token."""
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        return self.caller(claims["sub"], claims["role"], claims["sid"])

    async def register(
        self, *, email: str | None = None, password: str = PASSWORD, name: str = "Test User"
    ) -> dict[str, Any]:
        body = {"name": name, "email": email or random_email(), "password": password}
        response = await self.client.post("/auth/register", json=body)
        assert response.status_code == 201, response.text
        user: dict[str, Any] = response.json()
        return user

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await self.client.post(
            "/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def new_user(self) -> tuple[dict[str, Any], dict[str, Any]]:
        user = await self.register()
        return user, await self.login(user["email"])

    async def admin_tokens(self) -> dict[str, Any]:
        assert self.settings.admin_email is not None
        return await self.login(self.settings.admin_email, ADMIN_PASSWORD)

    async def set_role(self, user_id: str, role: str) -> httpx.Response:
        admin = await self.admin_tokens()
        return await self.client.patch(
            f"/auth/users/{user_id}", json={"role": role}, headers=self.bearer(admin)
        )


@asynccontextmanager
async def running(settings: Settings, gateway: GatewayKeys) -> AsyncIterator[AuthApi]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(
                transport=transport, base_url="http://auth", auth=AnonymousGateway(gateway)
            ) as client,
            httpx.AsyncClient(transport=transport, base_url="http://auth") as direct,
        ):
            yield AuthApi(app=app, settings=settings, gateway=gateway, client=client, direct=direct)


StartApi = Callable[..., AbstractAsyncContextManager[AuthApi]]


@pytest.fixture
def start_api(make_settings: Callable[..., Settings], gateway: GatewayKeys) -> StartApi:
    """Start the app with settings overrides: `async with start_api(x=1) as api:`."""

    def start(**overrides: Any) -> AbstractAsyncContextManager[AuthApi]:
        return running(make_settings(**overrides), gateway)

    return start


@pytest.fixture
async def api(start_api: StartApi) -> AsyncIterator[AuthApi]:
    """The app with a bootstrap ADMIN (a random email, ADMIN_PASSWORD)."""
    async with start_api(admin_email=random_email(), admin_password=ADMIN_PASSWORD) as api:
        yield api
