"""Engines and migrations for the services that own a database (auth and product).

The gateway has none and never imports this module. Alembic is imported only to migrate:
serving processes read revisions with shop_common.revisions instead.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from fastapi import FastAPI, Request
from sqlalchemy import DateTime, Dialect, TypeDecorator, column, event, literal, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from starlette.responses import Response

from shop_common.abandon import client_gone
from shop_common.deadline import RequestDeadlinePassed, request_deadline, time_left
from shop_common.fair_pool import FairAsyncQueuePool
from shop_common.pool_metrics import watch_pool
from shop_common.problems import problem_response
from shop_common.revisions import read_revisions

if TYPE_CHECKING:
    from alembic.config import Config

    from shop_common.settings import ServiceSettings

logger = logging.getLogger(__name__)
DEFAULT_POOL_SIZE = 16
# The readiness probe's own connection: it must answer within the gateway's probe
# timeout even while every request connection waits behind a lock.
PROBE_TIMEOUT_SECONDS = 1.0


def engine_options(settings: ServiceSettings) -> dict[str, Any]:
    """create_engine's keyword arguments for a service's settings: the pool and the time
    budgets (README "Production settings"; docs/decisions/failure-isolation.md)."""
    return {
        "pool_size": settings.database_pool_size,
        "pool_timeout": settings.database_pool_timeout_seconds,
        "statement_timeout": settings.database_statement_timeout_seconds,
        "lock_timeout": settings.database_lock_timeout_seconds,
        "connect_timeout": settings.database_connect_timeout_seconds,
        "pgbouncer": settings.database_pgbouncer,
    }


def _postgres_connect_args(
    *, statement_timeout: float, lock_timeout: float, connect_timeout: float, pgbouncer: bool
) -> dict[str, Any]:
    """asyncpg's connect arguments: server-side timeouts, so work the gateway gave up on
    is rolled back by PostgreSQL instead of committed later, and a client-side backstop
    for a server that does not answer at all."""
    args: dict[str, Any] = {"timeout": connect_timeout}
    if statement_timeout:
        # A statement still waiting this long after the server's own timeout means the
        # server or the network is stuck: the connection is dropped, the request is 503.
        args["command_timeout"] = statement_timeout + 2.0
    if pgbouncer:
        # Transaction pooling: a prepared statement lives on one server connection, the
        # next transaction may get another. No caches and unique names (SQLAlchemy's
        # asyncpg notes). PgBouncer refuses unknown startup parameters, so the timeouts
        # come from the role there (ALTER ROLE ... SET statement_timeout; README Deploy).
        args["statement_cache_size"] = 0
        args["prepared_statement_cache_size"] = 0
        args["prepared_statement_name_func"] = lambda: f"__asyncpg_{uuid.uuid4()}__"
        return args
    args["server_settings"] = {
        "statement_timeout": str(int(statement_timeout * 1000)),
        "lock_timeout": str(int(lock_timeout * 1000)),
        # A transaction left open (a request cancelled between statements) frees its
        # locks and its connection slot instead of holding them.
        "idle_in_transaction_session_timeout": str(
            int((statement_timeout and statement_timeout + 5) * 1000)
        ),
    }
    return args


def create_engine(
    url: str,
    *,
    statement_timeout: float = 5.0,
    lock_timeout: float = 3.0,
    connect_timeout: float = 2.0,
    pgbouncer: bool = False,
    **kwargs: Any,
) -> AsyncEngine:
    """An async engine; SQLite files get WAL, a busy timeout and foreign keys; PostgreSQL
    gets the statement, lock and connect timeouts (in seconds, 0: none, for migrations).
    Any session's commit in a request past its deadline is refused (shop_common.deadline)."""
    refuse_commits_past_deadline()
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
    # Out of connection slots, a request waits this long for one, then answers 503.
    kwargs.setdefault("pool_timeout", 2.0)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "asyncpg":
        connect_args = _postgres_connect_args(
            statement_timeout=statement_timeout,
            lock_timeout=lock_timeout,
            connect_timeout=connect_timeout,
            pgbouncer=pgbouncer,
        )
        kwargs["connect_args"] = {**connect_args, **kwargs.get("connect_args", {})}
    engine = create_async_engine(url, **kwargs)
    event.listen(engine.sync_engine.pool, "checkout", _discard_closed)
    watch_pool(engine)
    return engine


def _refuse_commit_past_deadline(session: Session) -> None:
    deadline = request_deadline.get()
    if deadline is None:
        return  # not in a request, or one minted without a deadline
    # The pending changes go out first (a flush may wait on a lock): the check is then
    # the last thing before COMMIT, one round trip before the database applies it.
    session.flush()
    if time.time() >= deadline:
        raise RequestDeadlinePassed(
            "The request's deadline passed before its write was committed; it was not applied."
        )


def may_commit_alone(statement_timeout: float) -> bool:
    """Whether this request may run a statement that commits as it runs (autocommit, one
    round trip) instead of a transaction whose COMMIT is checked first (the deadline
    hook above, AbandonGuard's): only while PostgreSQL's statement_timeout would cancel
    the statement before the request's deadline, and while its client is still there.
    Else the caller takes the transaction."""
    left = time_left()
    if left is not None and left <= statement_timeout:
        return False
    return not client_gone()


def refuse_commits_past_deadline() -> None:
    """Once per process: every Session's commit in a request checks its deadline first
    (shop_common.deadline; docs/decisions/request-deadline.md)."""
    if not event.contains(Session, "before_commit", _refuse_commit_past_deadline):
        event.listen(Session, "before_commit", _refuse_commit_past_deadline)


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


# The database cannot serve this request now; a retry soon may succeed. Every way
# it shows: a connection the server closed (DBAPIError with connection_invalidated), a
# terminated backend or refused connect (OperationalError, InterfaceError, or the bare
# OSError asyncpg raises while connecting), no pooled connection free in time
# (TimeoutError), and the server's own refusals, told apart by SQLSTATE below.
_UNAVAILABLE = (DBAPIError, SQLAlchemyTimeoutError, ConnectionError, TimeoutError)
# 08 connection exceptions, 53 insufficient resources ("too many clients"), 57P01-03
# terminated / crashed / "starting up" or "shutting down", 57014 a statement timeout,
# 55P03 a lock timeout, 40001 / 40P01 serialization failure and deadlock (rolled back).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P", "57014", "55P03", "40001", "40P01")
_UNAVAILABLE_WORDS = ("starting up", "shutting down", "too many clients", "connection slots")


def install_database_error_handler(app: FastAPI) -> None:
    """503 problem+json with Retry-After, never 500, when the database cannot serve.

    The pool has already dropped a broken connection (and those opened before it), so
    the client's retry gets a fresh one. Other DBAPIErrors (a bug, a constraint the
    service did not expect) go on to the catch-all 500.
    """

    async def on_unavailable(_: Request, exc: Exception) -> Response:
        if not is_unavailable(exc):
            raise exc  # to the catch-all handler: 500, logged
        logger.warning("database unavailable: %s: %s", type(exc).__name__, _first_line(exc))
        return problem_response(
            503, detail="The database is unavailable; try again.", headers={"Retry-After": "1"}
        )

    for kind in _UNAVAILABLE:
        app.add_exception_handler(kind, on_unavailable)


def is_unavailable(exc: BaseException) -> bool:
    """The database (not the request) is why this failed: answer 503, not 500."""
    if isinstance(exc, SQLAlchemyTimeoutError | OperationalError | InterfaceError | OSError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc.orig, OSError):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    message = str(exc.orig).lower()
    return any(word in message for word in _UNAVAILABLE_WORDS)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


def alembic_config(script_location: Path, database_url: str) -> Config:
    """For the migrate commands only: importing Alembic costs a process ~8 MB."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision(script_location: Path) -> str | None:
    return read_revisions(script_location).head


_probes: WeakKeyDictionary[AsyncEngine, AsyncEngine] = WeakKeyDictionary()


def _probe_engine(engine: AsyncEngine) -> AsyncEngine:
    """A one-connection engine beside `engine`, for /ready: a probe never waits behind
    the requests' pool (a long lock or a saturated pool would make every instance look
    dead, and the gateway would stop sending it the requests it can serve)."""
    if engine.dialect.name != "postgresql":
        return engine
    probe = _probes.get(engine)
    if probe is None:
        probe = create_async_engine(
            engine.url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=PROBE_TIMEOUT_SECONDS,
            pool_pre_ping=False,
            pool_recycle=300,
            connect_args={
                "timeout": PROBE_TIMEOUT_SECONDS,
                "command_timeout": PROBE_TIMEOUT_SECONDS,
                "server_settings": {"statement_timeout": str(int(PROBE_TIMEOUT_SECONDS * 1000))},
            }
            if engine.dialect.driver == "asyncpg"
            else {},
        )
        event.listen(probe.sync_engine.pool, "checkout", _discard_closed)
        _probes[engine] = probe
        # Disposed with the service's engine (AsyncEngine.dispose runs this in its greenlet).
        event.listen(engine.sync_engine, "engine_disposed", lambda _: probe.sync_engine.dispose())
    return probe


async def schema_state(engine: AsyncEngine, script_location: Path, version_table: str) -> str:
    """Whether the database answers and is at (or past) this code's latest migration.

    Checked on a connection of its own (_probe_engine). A revision this code does not
    know is a newer release's: during a rolling update the old replicas must stay ready
    after the new release migrated (migrations are additive).
    """
    revisions = read_revisions(script_location)
    probe = _probe_engine(engine)
    try:
        async with probe.connect() as connection:
            await connection.execute(select(literal(1)))
            try:
                # Read the version table directly: a MigrationContext would log each probe.
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
