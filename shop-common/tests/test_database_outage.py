"""A lost database answers 503 problem+json, and the pool replaces what the server closed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shop_common.database import create_engine, install_database_error_handler, is_unavailable
from shop_common.problems import install_problem_handlers
from shop_common.testing import fresh_postgres_database, postgres_base_url

pytestmark = pytest.mark.anyio


class Lost(Exception):
    """Stands in for the driver's own error inside a DBAPIError."""


class ServerSaid(Exception):
    """The driver's error as SQLAlchemy's asyncpg adapter shapes it: a SQLSTATE on it."""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_database_error_handler(app)

    @app.get("/")
    async def fail() -> None:
        raise error

    return app


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(
            DBAPIError("SELECT 1", None, Lost(), connection_invalidated=True), 503, id="invalidated"
        ),
        pytest.param(OperationalError("SELECT 1", None, Lost()), 503, id="operational"),
        pytest.param(InterfaceError("SELECT 1", None, Lost()), 503, id="interface"),
        pytest.param(SQLAlchemyTimeoutError("QueuePool limit"), 503, id="pool-timeout"),
        pytest.param(IntegrityError("INSERT", None, Lost()), 500, id="integrity-is-a-bug"),
        pytest.param(DBAPIError("SELECT 1", None, Lost()), 500, id="other-dbapi-error"),
        pytest.param(
            DBAPIError("SELECT 1", None, ServerSaid("the database system is starting up", "57P03")),
            503,
            id="starting-up",
        ),
        pytest.param(
            DBAPIError("SELECT 1", None, ServerSaid("the database system is shutting down", None)),
            503,
            id="shutting-down-by-its-words",
        ),
        pytest.param(
            DBAPIError("SELECT 1", None, ServerSaid("sorry, too many clients already", "53300")),
            503,
            id="too-many-clients",
        ),
        pytest.param(
            DBAPIError("SELECT 1", None, ServerSaid("terminating connection", "57P01")),
            503,
            id="terminated-backend",
        ),
        pytest.param(
            DBAPIError("UPDATE", None, ServerSaid("canceling statement", "57014")),
            503,
            id="statement-timeout",
        ),
        pytest.param(
            DBAPIError("UPDATE", None, ServerSaid("canceling statement", "55P03")),
            503,
            id="lock-timeout",
        ),
        pytest.param(
            DBAPIError("SELECT 1", None, ServerSaid("syntax error", "42601")), 500, id="a-bug"
        ),
        pytest.param(ConnectionRefusedError(111, "refused"), 503, id="connection-refused"),
        pytest.param(ConnectionResetError(104, "reset"), 503, id="connection-reset"),
        pytest.param(TimeoutError(), 503, id="connect-timeout"),
    ],
)
async def test_database_errors_answer_as_problems(error: Exception, status: int) -> None:
    transport = httpx.ASGITransport(app=app_raising(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        response = await client.get("/")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert ("retry-after" in response.headers) == (status == 503)
    # A 500 is followed by the server closing the connection: it says so beforehand.
    assert (response.headers.get("connection") == "close") == (status == 500)


async def test_a_500_names_the_request_id_the_request_came_with() -> None:
    from shop_common.request_context import RequestContextMiddleware

    app = app_raising(RuntimeError("a bug"))
    app.add_middleware(RequestContextMiddleware)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        response = await client.get("/", headers={"X-Request-ID": "req-500-test"})
    assert response.status_code == 500
    assert response.json()["request_id"] == "req-500-test"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database(postgres_base_url()) as url:
        yield url


async def terminate_backends(url: str) -> int:
    """Every server process of this database but the caller's, as a failover or restart does."""
    database = url.rsplit("/", 1)[1]
    admin = create_async_engine(postgres_base_url(), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            result = await connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            )
            return int(result.scalar_one())
    finally:
        await admin.dispose()


async def select_one(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT 1"))).scalar_one())


@pytest.mark.postgres
async def test_a_statement_on_a_terminated_connection_is_unavailable(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            assert await terminate_backends(postgres_url) == 1
            with pytest.raises(DBAPIError) as caught:
                await connection.execute(text("SELECT 1"))
        assert is_unavailable(caught.value) and caught.value.connection_invalidated
        assert await select_one(engine) == 1  # the pool opened a new connection
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_pooled_connections_the_server_closed_are_replaced_on_checkout(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url)
    try:
        async with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                await connection.execute(text("SELECT 1"))
        assert "Connections in pool: 2 " in engine.sync_engine.pool.status()
        assert await terminate_backends(postgres_url) == 2
        # However soon the driver notices, each query either works or fails as unavailable,
        # and within a few the pool serves fresh connections again.
        outcomes = []
        for _ in range(4):
            try:
                outcomes.append(await select_one(engine))
            except DBAPIError as exc:
                assert is_unavailable(exc)
                outcomes.append(0)
        assert outcomes[-2:] == [1, 1]
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_statement_past_the_statement_timeout_is_cancelled_and_unavailable(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url, statement_timeout=0.2)
    try:
        with pytest.raises(DBAPIError) as caught:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT pg_sleep(5)"))
        assert is_unavailable(caught.value)
        assert await select_one(engine) == 1
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_write_behind_a_lock_times_out_and_is_never_applied(postgres_url: str) -> None:
    holder = create_engine(postgres_url, statement_timeout=0, lock_timeout=0)
    engine = create_engine(postgres_url, lock_timeout=0.2)
    try:
        async with holder.begin() as setup:
            await setup.execute(text("CREATE TABLE item (name text)"))
        async with holder.connect() as locker:
            await locker.execute(text("BEGIN"))
            await locker.execute(text("LOCK TABLE item IN ACCESS EXCLUSIVE MODE"))
            with pytest.raises(DBAPIError) as caught:
                async with engine.begin() as connection:
                    await connection.execute(text("INSERT INTO item VALUES ('late')"))
            await locker.execute(text("COMMIT"))
        assert is_unavailable(caught.value)
        async with engine.connect() as connection:
            count = await connection.scalar(text("SELECT count(*) FROM item"))
        assert count == 0
    finally:
        await engine.dispose()
        await holder.dispose()


async def test_a_refused_connection_is_unavailable() -> None:
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:9/none")
    try:
        with pytest.raises(Exception) as caught:  # noqa: B017 - the driver picks the type
            await select_one(engine)
        assert is_unavailable(caught.value)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_readiness_answers_while_every_pooled_connection_is_busy(postgres_url: str) -> None:
    from pathlib import Path

    from shop_common.database import schema_state

    engine = create_engine(postgres_url, pool_size=1, pool_timeout=0.2)
    try:
        async with engine.connect() as busy:
            await busy.execute(text("SELECT 1"))
            # The request pool is exhausted; the probe's own connection still answers.
            state = await schema_state(engine, Path("/nonexistent"), "no_version_table")
        assert state == "migration_pending"  # the database answered: no version table
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_pgbouncer_mode_runs_statements_with_no_prepared_statement_cache(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url, pgbouncer=True)
    try:
        for _ in range(3):  # the same statement again: no cached prepared statement reused
            assert await select_one(engine) == 1
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            assert driver._stmt_cache.get_max_size() == 0
    finally:
        await engine.dispose()
