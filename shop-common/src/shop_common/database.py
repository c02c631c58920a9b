"""Engines and migrations for the services that own a database (auth and product).

The gateway has none and never imports this module. Alembic is imported only to migrate:
serving processes read revisions with shop_common.revisions instead.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from sqlalchemy import DateTime, Dialect, TypeDecorator, column, event, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from starlette.responses import Response

from shop_common.fair_pool import FairAsyncQueuePool
from shop_common.pool_metrics import watch_pool
from shop_common.problems import problem_response
from shop_common.revisions import read_revisions

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)
DEFAULT_POOL_SIZE = 16


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; SQLite files get WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs.setdefault("poolclass", FairAsyncQueuePool)  # as below; memory: one conn
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        watch_pool(engine)
        return engine
    # A fixed pool, no overflow: under sustained load past pool_size an overflow
    # connection is opened for a request and closed after it (a PostgreSQL backend forked
    # per request), so requests wait for a pooled one instead
    # (docs/decisions/database-pool.md). No pre-ping: on asyncpg it costs three round
    # trips per checkout (23 % of a GET's CPU). A connection the server closed is caught
    # for free on checkout (_discard_closed), or fails its first statement; the pool then
    # drops it and every connection older than it, and the request answers 503
    # (install_database_error_handler). Recycling bounds how long an idle connection is trusted.
    kwargs.setdefault("pool_size", DEFAULT_POOL_SIZE)
    kwargs.setdefault("max_overflow", 0)
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_recycle", 1800)
    kwargs.setdefault("poolclass", FairAsyncQueuePool)  # waiters served in arrival order
    engine = create_async_engine(url, **kwargs)
    event.listen(engine.sync_engine.pool, "checkout", _discard_closed)
    watch_pool(engine)
    return engine


def _discard_closed(_: Any, __: Any, connection_proxy: Any) -> None:
    """A pooled connection the driver already knows is closed is replaced, no round trip.

    asyncpg notices a terminated backend (the server's FATAL message, a reset socket) as
    soon as the event loop reads it; raising DisconnectionError on checkout makes the pool
    drop that connection and hand out another (the others are checked the same way).
    """
    driver = connection_proxy.driver_connection
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise DisconnectionError("the server closed this connection")


@asynccontextmanager
async def open_session(sessionmaker: Callable[[], AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A request's session whose closing never fails the request.

    The session closes after the response has started; on a connection the server
    terminated (pg_terminate_backend, a restart) asyncpg's rollback fails there, and an
    error then would cut the response off (the gateway sees a 502). The connection is
    invalidated instead, so the pool drops it.
    """
    session = sessionmaker()
    try:
        yield session
    finally:
        try:
            await session.close()
        except DBAPIError as exc:
            logger.warning("session closed on a lost connection: %s", type(exc).__name__)
            await session.invalidate()


# The database went away under a request: a connection the server closed (DBAPIError
# with connection_invalidated), a terminated backend or refused connect (OperationalError,
# InterfaceError), or no pooled connection free in time (TimeoutError).
_UNAVAILABLE = (DBAPIError, SQLAlchemyTimeoutError)


def install_database_error_handler(app: FastAPI) -> None:
    """503 problem+json, never 500, when the database is unreachable mid-request.

    The pool has already dropped the broken connection (and those opened before it), so
    the client's retry gets a fresh one. Other DBAPIErrors (a bug, a constraint the
    service did not expect) go on to the catch-all 500.
    """

    async def on_unavailable(_: Request, exc: Exception) -> Response:
        if not is_unavailable(exc):
            raise exc  # to the catch-all handler: 500, logged
        logger.warning("database unavailable: %s", type(exc).__name__)
        return problem_response(
            503, detail="The database is unavailable; try again.", headers={"Retry-After": "1"}
        )

    for kind in _UNAVAILABLE:
        app.add_exception_handler(kind, on_unavailable)


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, SQLAlchemyTimeoutError | OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def alembic_config(script_location: Path, database_url: str) -> Config:
    """For the migrate commands only: importing Alembic costs a process ~8 MB."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision(script_location: Path) -> str | None:
    return read_revisions(script_location).head


async def schema_state(engine: AsyncEngine, script_location: Path, version_table: str) -> str:
    """Whether the database answers and is at (or past) this code's latest migration.

    A revision this code does not know is a newer release's: during a rolling update the
    old replicas must stay ready after the new release migrated (migrations are additive).
    """
    revisions = read_revisions(script_location)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return "unavailable"
    try:
        async with engine.connect() as connection:
            # Read the version table directly: a MigrationContext would log on every probe.
            revision = await connection.scalar(
                select(column("version_num")).select_from(table(version_table))
            )
    except DBAPIError:
        return "migration_pending"  # answers, but nothing migrated yet
    except Exception:
        return "unavailable"
    if revision == revisions.head or (revision is not None and revision not in revisions.known):
        return "ok"
    return "migration_pending"


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on PostgreSQL (timestamptz) and SQLite (naive text).

    SQLite keeps no offset, so values are stored as naive UTC; the fixed-width text
    SQLAlchemy writes (always with microseconds) sorts in time order, which keyset
    paging on timestamps relies on.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
