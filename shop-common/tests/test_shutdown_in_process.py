"""The draining server in this process (a thread of its own, so uvicorn leaves the test
runner's signal handlers alone): the drain, the second signal, the bounded cleanup.
test_shutdown.py does the same from outside, on real processes and signals."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from shop_common import shutdown
from shop_common.shutdown import DrainingServer, draining
from testsupport.processes import free_port


@pytest.fixture(autouse=True)
def not_draining() -> Iterator[None]:
    """The draining flag is process-wide: leave it as it was found."""
    yield
    shutdown._drain["since"] = None
    gc.unfreeze()


def app_whose_cleanup(*, hangs: bool) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if hangs:
            await asyncio.Event().wait()  # a pool that never closes

    app = FastAPI(lifespan=lifespan)

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    return app


def serving(app: FastAPI, *, drain_seconds: float) -> tuple[DrainingServer, threading.Thread]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), timeout_graceful_shutdown=1, log_config=None
    )
    server = DrainingServer(config, drain_seconds=drain_seconds)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    return server, thread


def test_a_signal_drains_then_a_hanging_cleanup_is_cut_at_its_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, thread = serving(app_whose_cleanup(hangs=True), drain_seconds=0.5)
    url = f"http://127.0.0.1:{server.config.port}/ping"
    signalled = time.monotonic()
    with caplog.at_level(logging.INFO, logger="shop_common.shutdown"):
        server.handle_exit(signal.SIGTERM, None)
        assert draining()
        assert httpx.get(url, timeout=2).status_code == 200  # still served while draining
        thread.join(timeout=15)
    took = time.monotonic() - signalled
    assert not thread.is_alive()
    assert took >= 0.5  # the whole drain
    assert took < 8  # drain 0.5 + requests 1 + cleanup 1.5, with room for a busy machine
    stuck = [r for r in caplog.records if r.getMessage().startswith("shutdown exceeded")]
    assert len(stuck) == 1
    tasks: list[str] = stuck[0].__dict__["stuck_tasks"]  # a log record's `extra`
    assert any("lifespan" in task for task in tasks)


def test_a_second_signal_ends_the_drain_at_once() -> None:
    server, thread = serving(app_whose_cleanup(hangs=False), drain_seconds=30)
    server.handle_exit(signal.SIGTERM, None)
    signalled = time.monotonic()
    server.handle_exit(signal.SIGTERM, None)
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert time.monotonic() - signalled < 5
