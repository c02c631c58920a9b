"""Graceful shutdown: drain first (/ready is 503, requests still served), then stop.

On SIGTERM (or SIGINT) `DrainingServer` only marks the process as draining; /ready
answers 503 so a balancer (the gateway's readiness poller, Kubernetes' endpoints) sends
new requests elsewhere, while everything that still arrives is served and answered with
`Connection: close`, so kept-alive connections end one by one. After
`shutdown_drain_seconds` uvicorn's own shutdown follows: it stops accepting, waits for
in-flight requests (at most `shutdown_timeout_seconds`), runs the lifespan shutdown
(pools closed) and exits. A second signal during the drain cuts it short. The whole
shutdown is bounded: a lifespan cleanup that hangs (a pool that will not close) is given
`CLEANUP_SECONDS`, its stuck tasks are logged, and the process exits anyway.
docs/decisions/shutdown-drain.md has the reasoning and the timings.

The draining flag is process-wide, as the signal that sets it is.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import time
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)
_drain = {"since": None}  # type: dict[str, float | None]
# The lifespan cleanup's share of the stop, after in-flight requests had theirs: closing
# pools takes milliseconds, and drain + timeout + this stays under the launcher's 10 s.
CLEANUP_SECONDS = 1.5


def draining() -> bool:
    """The process got its stop signal and is draining (or past it)."""
    return _drain["since"] is not None


def start_draining() -> None:
    if _drain["since"] is None:
        _drain["since"] = time.monotonic()


class DrainingServer(uvicorn.Server):
    """uvicorn's Server with a drain period between the stop signal and the shutdown."""

    def __init__(self, config: uvicorn.Config, *, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_until is None and self.drain_seconds > 0 and not self.should_exit:
            self._captured_signals.append(sig)  # re-raised after serve, as uvicorn does
            self._drain_until = time.monotonic() + self.drain_seconds
            start_draining()
            logger.info(
                "draining for %.1f s: /ready answers 503, requests are still served",
                self.drain_seconds,
            )
            return
        if not self.should_exit:  # a second signal: no more waiting
            start_draining()
            self._captured_signals.append(sig)
            self.should_exit = True
            return
        super().handle_exit(sig, frame)  # during shutdown: a SIGINT forces the exit

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # What exists now (modules, the app, its routes and schemas) lives as long as the
        # process. Frozen, the collector stops walking it: a full collection over the
        # ~125,000 objects of a service took ~60 ms, which was the whole p99 of a GET
        # under load (docs/decisions/gc-freeze.md).
        gc.collect()
        gc.freeze()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        budget = self.config.timeout_graceful_shutdown or 0
        try:
            await asyncio.wait_for(super().shutdown(sockets), budget + CLEANUP_SECONDS)
        except TimeoutError:
            # An orchestrator would SIGKILL us soon anyway; exiting now, with the stuck
            # tasks in the log, is what lets the next engineer find the cause.
            logger.error(
                "shutdown exceeded its %.1f s budget; exiting without it",
                budget + CLEANUP_SECONDS,
                extra={"stuck_tasks": _stuck_tasks()},
            )

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            self.should_exit = True
        return await super().on_tick(counter)


def _stuck_tasks() -> list[str]:
    current = asyncio.current_task()
    stuck = []
    for task in asyncio.all_tasks():
        if task is current or task.done():
            continue
        frames = task.get_stack(limit=3)
        where = " < ".join(
            f"{f.f_code.co_name} ({f.f_code.co_filename}:{f.f_lineno})" for f in frames
        )
        stuck.append(f"{task.get_name()}: {where}")
    return stuck


def serve(
    app: Any,
    *,
    drain_seconds: float,
    timeout_graceful_shutdown: int,
    workers: int = 1,
    **config: Any,
) -> int:
    """uvicorn.run's equivalent with the drain period, in this process or in `workers`
    processes sharing the socket (shop_common.workers); the exit status."""
    settings = uvicorn.Config(app, timeout_graceful_shutdown=timeout_graceful_shutdown, **config)
    if workers > 1:
        from shop_common.workers import serve_workers

        return serve_workers(settings, workers=workers, drain_seconds=drain_seconds)
    DrainingServer(settings, drain_seconds=drain_seconds).run()
    return 0


class CloseWhileDraining:
    """ASGI middleware: while draining, every response asks the client to close."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not draining():
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)
