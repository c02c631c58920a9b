"""Graceful shutdown: a real process, a real SIGTERM, the drain seen from outside."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx

from testsupport.processes import free_port, wait_until_answers

APP = """
import sys
from fastapi import FastAPI
from shop_common.health import health_router
from shop_common.shutdown import CloseWhileDraining, serve

async def check_ready():
    return {"database": "ok"}

app = FastAPI()
app.include_router(health_router(check_ready))

@app.get("/frozen")
async def frozen():
    import gc
    return gc.get_freeze_count()

app.add_middleware(CloseWhileDraining)
serve(app, drain_seconds=float(sys.argv[2]), timeout_graceful_shutdown=2,
      host="127.0.0.1", port=int(sys.argv[1]), log_config=None)
"""


def start(drain_seconds: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", APP, str(port), str(drain_seconds)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_answers(f"{url}/health", process)
    return process, url


def test_sigterm_makes_ready_503_while_requests_are_still_served() -> None:
    process, url = start(drain_seconds=1.5)
    try:
        assert httpx.get(f"{url}/ready", timeout=2).status_code == 200
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        ready = httpx.get(f"{url}/ready", timeout=2)
        health = httpx.get(f"{url}/health", timeout=2)
        assert (ready.status_code, ready.json()["status"]) == (503, "draining")
        assert health.status_code == 200
        assert health.headers["connection"] == "close"  # kept-alive clients move on
        process.wait(timeout=10)
        assert time.monotonic() - signalled >= 1.5  # it served through the whole drain
    finally:
        process.kill()
        process.wait()


def test_a_second_signal_cuts_the_drain_short() -> None:
    process, _ = start(drain_seconds=30)
    try:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert time.monotonic() - signalled < 5
    finally:
        process.kill()
        process.wait()


HANGING_CLEANUP = """
import asyncio, sys
from contextlib import asynccontextmanager
from fastapi import FastAPI
from shop_common.logging import configure_logging
from shop_common.shutdown import serve

@asynccontextmanager
async def lifespan(app):
    yield
    await asyncio.Event().wait()  # a pool that never closes

configure_logging("test")
serve(FastAPI(lifespan=lifespan), drain_seconds=0, timeout_graceful_shutdown=1,
      host="127.0.0.1", port=int(sys.argv[1]), log_config=None)
"""


def test_a_hanging_cleanup_does_not_keep_the_process_alive() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", HANGING_CLEANUP, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/docs", process)
        process.send_signal(signal.SIGTERM)
        # Its budget: 1 s for requests, 1.5 s of cleanup.
        output = process.communicate(timeout=15)[0].decode()
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGTERM, output
    assert "shutdown exceeded its 2.5 s budget" in output
    assert "lifespan" in output  # the stuck task is named, where it waits


def test_what_exists_at_startup_is_frozen_out_of_garbage_collection() -> None:
    process, url = start(drain_seconds=0)
    try:
        frozen = httpx.get(f"{url}/frozen", timeout=5).json()
    finally:
        process.terminate()
        process.wait(10)
    assert frozen > 10_000  # modules, the app and its routes: never walked by the collector
