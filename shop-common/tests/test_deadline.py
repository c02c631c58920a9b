"""A request past its deadline is refused before any work, and nothing it wrote is
committed after it: on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request
from sqlalchemy import String, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shop_common.abandon import AbandonGuard
from shop_common.credential import (
    CREDENTIAL_HEADER,
    Caller,
    CredentialSigner,
    CredentialVerifier,
    RequestBinding,
)
from shop_common.database import (
    create_engine,
    install_database_error_handler,
    may_commit_alone,
    open_session,
)
from shop_common.deadline import RequestDeadlinePassed, request_deadline, time_left
from shop_common.gateway_guard import GatewayGuard
from shop_common.problems import install_problem_handlers

pytestmark = pytest.mark.anyio
KEY = Ed25519PrivateKey.generate()


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


@dataclass
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    async def count(self, name: str) -> int:
        async with self.sessionmaker() as session:
            found = await session.scalar(
                select(func.count()).select_from(Item).where(Item.name == name)
            )
        return int(found or 0)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    try:
        yield Database(engine, async_sessionmaker(engine, expire_on_commit=False))
    finally:
        await engine.dispose()


@contextmanager
def deadline_in(seconds: float) -> Iterator[None]:
    """As GatewayGuard sets it for a request whose credential says now + `seconds`."""
    token = request_deadline.set(time.time() + seconds)
    try:
        yield
    finally:
        request_deadline.reset(token)


async def test_a_commit_within_the_deadline_is_applied(database: Database) -> None:
    name = uuid.uuid4().hex[:12]
    with deadline_in(30):
        async with database.sessionmaker() as session:
            await session.execute(insert(Item).values(name=name))
            await session.commit()
    assert await database.count(name) == 1


async def test_a_commit_past_the_deadline_raises_and_its_work_is_rolled_back(
    database: Database,
) -> None:
    """The statement ran in time; the request then stalled (a frozen process, a slow
    step) past its deadline: the commit refuses and nothing stays."""
    name = uuid.uuid4().hex[:12]
    with deadline_in(0.2):
        async with open_session(database.sessionmaker) as session:
            await session.execute(insert(Item).values(name=name))
            await asyncio.sleep(0.3)
            with pytest.raises(RequestDeadlinePassed):
                await session.commit()
    assert await database.count(name) == 0


async def test_pending_orm_changes_past_the_deadline_are_not_applied(
    database: Database,
) -> None:
    """Objects added but not yet flushed: the hook flushes them (a flush may wait on a
    lock) and checks the deadline after it, right before COMMIT; all is rolled back."""
    name = uuid.uuid4().hex[:12]
    with deadline_in(30):
        async with database.sessionmaker() as session:
            item = Item(name=name)
            session.add(item)
            await session.commit()
    assert await database.count(name) == 1
    late = uuid.uuid4().hex[:12]
    with deadline_in(-1):
        async with open_session(database.sessionmaker) as session:
            session.add(Item(name=late))
            stored = await session.get(Item, item.id)
            assert stored is not None
            stored.name = late + "-renamed"
            with pytest.raises(RequestDeadlinePassed):
                await session.commit()
    assert await database.count(name) == 1
    assert await database.count(late) == 0
    assert await database.count(late + "-renamed") == 0


async def test_work_outside_a_request_has_no_deadline(database: Database) -> None:
    """Background work (the events relay, a migration) sets none and commits as ever."""
    assert time_left() is None
    name = uuid.uuid4().hex[:12]
    async with database.sessionmaker() as session:
        await session.execute(insert(Item).values(name=name))
        await session.commit()
    assert await database.count(name) == 1


def service(database: Database, *, work_seconds: float) -> FastAPI:
    """One write route behind the guard, as every service installs it."""
    app = FastAPI()
    install_problem_handlers(app)
    install_database_error_handler(app)
    app.state.started = 0

    @app.post("/items/{name}", status_code=201)
    async def create(name: str, request: Request) -> dict[str, str]:
        request.app.state.started += 1
        async with open_session(database.sessionmaker) as session:
            await session.execute(insert(Item).values(name=name))
            await asyncio.sleep(work_seconds)  # a lock wait, a frozen process
            await session.commit()
        return {"name": name}

    app.add_middleware(
        GatewayGuard, verifier=CredentialVerifier(KEY.public_key(), "items"), routes=app.routes
    )
    return app


async def post(app: FastAPI, name: str, *, deadline: float | None) -> httpx.Response:
    path = f"/items/{name}"
    request_id = uuid.uuid4().hex
    credential = CredentialSigner(KEY).mint(
        audience="items",
        caller=Caller(user_id=None, role=None),
        request=RequestBinding("POST", path, b"", request_id),
        deadline=deadline,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        return await client.post(
            path, headers={CREDENTIAL_HEADER: credential, "x-request-id": request_id}
        )


async def test_a_request_already_past_its_deadline_gets_503_before_any_work(
    database: Database,
) -> None:
    app = service(database, work_seconds=0)
    name = uuid.uuid4().hex[:12]
    response = await post(app, name, deadline=time.time() - 0.01)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert app.state.started == 0
    assert await database.count(name) == 0


async def test_a_write_that_outlives_its_deadline_gets_503_and_is_not_applied(
    database: Database,
) -> None:
    app = service(database, work_seconds=0.4)
    name = uuid.uuid4().hex[:12]
    response = await post(app, name, deadline=time.time() + 0.2)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert app.state.started == 1
    assert await database.count(name) == 0


async def test_a_write_within_its_deadline_is_applied(database: Database) -> None:
    app = service(database, work_seconds=0)
    name = uuid.uuid4().hex[:12]
    response = await post(app, name, deadline=time.time() + 30)
    assert response.status_code == 201
    assert await database.count(name) == 1


def test_a_statement_commits_alone_only_if_it_cannot_outlive_the_deadline() -> None:
    """An autocommit statement has no COMMIT to check: PostgreSQL's statement_timeout is
    what bounds it, so it must end before the deadline can pass."""
    assert request_deadline.get() is None  # not in a request, or no deadline given
    assert may_commit_alone(statement_timeout=5.0)
    with deadline_in(8.0):
        assert may_commit_alone(statement_timeout=5.0)
    with deadline_in(4.0):
        assert not may_commit_alone(statement_timeout=5.0)
    with deadline_in(-1.0):
        assert not may_commit_alone(statement_timeout=5.0)


async def test_a_write_whose_client_left_never_commits_alone() -> None:
    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # the body
        await asyncio.sleep(0.05)  # the client leaves meanwhile
        seen.append(may_commit_alone(statement_timeout=5.0))

    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"{}"},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(_: Any) -> None:
        return None

    await AbandonGuard(app)({"type": "http", "method": "POST"}, receive, send)
    assert seen == [False]
