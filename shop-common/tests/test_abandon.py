"""A write whose client disconnected before the commit is rolled back, not applied."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from shop_common.abandon import AbandonGuard, refuse_abandoned_commits
from shop_common.database import create_engine
from shop_common.problems import install_problem_handlers
from shop_common.testing import sqlite_url

pytestmark = pytest.mark.anyio


async def drive(app: Any, *, leave: asyncio.Event | None) -> list[dict[str, Any]]:
    """One POST through the ASGI app as a server would; the client leaves on `leave`."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        waits = [asyncio.ensure_future(done.wait())]
        if leave is not None:
            waits.append(asyncio.ensure_future(leave.wait()))
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/items",
        "raw_path": b"/items",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    return sent


@pytest.mark.parametrize(
    "client_leaves", [pytest.param(True, id="client-left"), pytest.param(False, id="client-stayed")]
)
async def test_a_write_is_committed_only_while_its_client_waits(
    tmp_path: Path, client_leaves: bool
) -> None:
    engine = create_engine(sqlite_url(tmp_path))
    sessions = async_sessionmaker(engine)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE item (name TEXT)"))
    refuse_abandoned_commits()
    leave = asyncio.Event()
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(AbandonGuard)

    @app.post("/items", status_code=201)
    async def create(body: dict[str, str]) -> dict[str, str]:
        async with sessions() as session:
            await session.execute(text("INSERT INTO item VALUES ('x')"))
            if client_leaves:
                leave.set()  # the gateway gave up while the write was under way
                await asyncio.sleep(0.05)
            await session.commit()
        return body

    try:
        sent = await drive(app, leave=leave)
        async with engine.connect() as connection:
            count = await connection.scalar(text("SELECT count(*) FROM item"))
    finally:
        await engine.dispose()
    assert sent[0]["status"] == (503 if client_leaves else 201)
    assert count == (0 if client_leaves else 1)
