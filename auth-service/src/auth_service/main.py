"""The composition root: create_app builds the service; its lifespan owns the resources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.audit import security_event
from auth_service.bootstrap import StartupError, admin_credentials, bootstrap_admin
from auth_service.config import SERVICE_NAME, Settings
from auth_service.db import MIGRATIONS_DIR, VERSION_TABLE, create_sessionmaker, utc_now
from auth_service.passwords import PasswordHasher
from auth_service.router import internal_router, router
from auth_service.signing_keys import KeyRing, ensure_key
from auth_service.tokens import TokenIssuer
from shop_common.callers import credential_verifier
from shop_common.credential import CredentialVerifier
from shop_common.database import create_engine, engine_options, schema_state
from shop_common.health import health_router
from shop_common.service_app import install_service_defaults

if TYPE_CHECKING:
    from auth_service.revocation_publisher import RevocationPublisher

ADMIN_RETRY_SECONDS = 5.0
logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Check the settings, load the keys, and wire the app; StartupError says what is wrong."""
    settings = settings or Settings()
    admin_credentials(settings)  # an unusable ADMIN_EMAIL/ADMIN_PASSWORD stops the start here
    keyring = _load_keyring(settings)
    app = FastAPI(
        title="auth-service",
        summary="Registration, login, sessions and signing keys",
        redirect_slashes=False,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.keyring = keyring
    install_service_defaults(app, settings=settings, verifier=_gateway_verifier(settings))
    app.include_router(router)
    app.include_router(internal_router)

    async def check_ready() -> dict[str, str]:
        database = await schema_state(app.state.engine, MIGRATIONS_DIR, VERSION_TABLE)
        checks = {"database": database, "signing_keys": "ok" if keyring.keys else "unavailable"}
        publisher: RevocationPublisher | None = app.state.revocation_publisher
        if publisher is not None:
            # Never a failure: without Redis the gateways poll /internal/revocations.
            checks["redis"] = publisher.state
        return checks

    app.include_router(health_router(check_ready))
    return app


def _gateway_verifier(settings: Settings) -> CredentialVerifier:
    try:
        return credential_verifier(settings, audience=SERVICE_NAME)
    except (OSError, ValueError) as exc:
        raise StartupError(str(exc)) from None


def _load_keyring(settings: Settings) -> KeyRing:
    keyring = KeyRing(settings.keys_dir, activation_seconds=settings.signing_key_activation_seconds)
    try:
        created = ensure_key(settings.keys_dir)
        keyring.reload()
    except OSError as exc:
        raise StartupError(f"cannot use the signing key directory: {exc}") from None
    if not keyring.keys:
        raise StartupError(f"no usable signing key in {settings.keys_dir}")
    if created is not None:
        security_event("signing_key_created", kid=created)
    return keyring


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    keyring: KeyRing = app.state.keyring
    engine = create_engine(settings.database_url, **engine_options(settings))
    sessions = create_sessionmaker(engine)
    hasher = PasswordHasher(settings.bcrypt_rounds)
    issuer = TokenIssuer(
        keyring,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    app.state.engine = engine
    app.state.sessionmaker = sessions
    app.state.hasher = hasher
    app.state.issuer = issuer
    app.state.clock = utc_now
    publisher = _revocation_publisher(settings, sessions)
    app.state.revocation_publisher = publisher
    tasks: list[asyncio.Task[None]] = []
    try:
        if publisher is not None:
            tasks.append(asyncio.create_task(publisher.run()))
        # Two bcrypt hashes (the dummy, the ADMIN's on a first start) in two threads.
        _, admin_done = await asyncio.gather(hasher.prepare(), _try_bootstrap_admin(app, hasher))
        if not admin_done:
            tasks.append(asyncio.create_task(_retry_bootstrap_admin(app, hasher)))
        tasks.append(
            asyncio.create_task(_reload_keys(keyring, settings.signing_key_reload_seconds))
        )
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if publisher is not None:
            await publisher.sink.aclose()
        await engine.dispose()


def _revocation_publisher(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> RevocationPublisher | None:
    if settings.redis_url is None:
        return None
    # Imported only with a REDIS_URL: redis-py costs a process ~7 MB.
    from auth_service.revocation_publisher import RedisRevocationSink, RevocationPublisher

    sink = RedisRevocationSink.from_url(
        settings.redis_url.get_secret_value(), settings.revocation_redis_key
    )
    return RevocationPublisher(
        sessions,
        sink,
        retention=timedelta(seconds=settings.revocation_retention_seconds),
        interval=settings.revocation_publish_seconds,
    )


async def _try_bootstrap_admin(app: FastAPI, hasher: PasswordHasher) -> bool:
    try:
        await bootstrap_admin(app.state.sessionmaker, app.state.settings, hasher)
    except (SQLAlchemyError, OSError) as exc:  # asyncpg's refused connect is an OSError
        # The service still starts (and /ready says why it is not ready); the ADMIN is
        # created as soon as the database is migrated.
        logger.error(
            "cannot create the ADMIN account yet (is the database migrated?); will retry",
            extra={"error": type(exc).__name__},
        )
        return False
    return True


async def _retry_bootstrap_admin(app: FastAPI, hasher: PasswordHasher) -> None:
    while True:
        await asyncio.sleep(ADMIN_RETRY_SECONDS)
        if await _try_bootstrap_admin(app, hasher):
            return


async def _reload_keys(keyring: KeyRing, interval: float) -> None:
    """Pick up keys added by `keys rotate` (and drop pruned ones) in every replica."""
    while True:
        await asyncio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(keyring.reload)
        except OSError:
            logger.exception("cannot re-read the signing key directory")
