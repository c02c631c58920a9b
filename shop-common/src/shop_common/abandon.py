"""A write whose client went away is rolled back, not committed.

The gateway gives up on a request after UPSTREAM_TIMEOUT and answers 504; the service may
still be working on it (behind a lock, a slow disk). AbandonGuard notices the client's
disconnect, and a commit in that request then raises RequestAbandoned instead of
committing (a SQLAlchemy before_commit hook), so a write answered with an error is not
applied afterwards. Reads are left alone: they change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop_common.problems import Problem

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class RequestAbandoned(Problem):
    """The client left before the write was committed: it was rolled back."""

    status = 503
    title = "Request abandoned"


class _Client:
    __slots__ = ("gone",)

    def __init__(self) -> None:
        self.gone = False


_client: ContextVar[_Client | None] = ContextVar("shop_client", default=None)


class AbandonGuard:
    """Watches for the client's disconnect once a write's body was read: from then on
    the server's receive() returns only when the client leaves or the response is done."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _READS:
            await self.app(scope, receive, send)
            return
        client = _Client()
        token = _client.set(client)
        watcher: asyncio.Task[None] | None = None

        async def watch() -> None:
            message = await receive()
            if message["type"] == "http.disconnect":
                client.gone = True

        async def receive_then_watch() -> Message:
            nonlocal watcher
            message = await receive()
            if message["type"] == "http.disconnect":
                client.gone = True
            elif not message.get("more_body", False) and watcher is None:
                watcher = asyncio.create_task(watch())
            return message

        try:
            await self.app(scope, receive_then_watch, send)
        finally:
            _client.reset(token)
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher


def client_gone() -> bool:
    """The client of the write being handled has disconnected."""
    client = _client.get()
    return client is not None and client.gone


def _refuse_abandoned_commit(_session: Any) -> None:
    if client_gone():
        raise RequestAbandoned("The client left before the write was committed.")


def refuse_abandoned_commits() -> None:
    """Once per process: every Session's commit checks the request's client first."""
    if not event.contains(Session, "before_commit", _refuse_abandoned_commit):
        event.listen(Session, "before_commit", _refuse_abandoned_commit)
