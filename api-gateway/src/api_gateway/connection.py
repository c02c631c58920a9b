"""One keep-alive HTTP/1.1 connection to an upstream, parsed with httptools.

The protocol object buffers the response (pausing the socket past HIGH_WATER) and
wakes whoever waits for the head or the next part of the body. connection.py knows
HTTP framing; upstream.py knows pools, retries and instances.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

import httptools

HIGH_WATER = 256 * 1024  # stop reading the upstream while this much is unsent


class UpstreamError(Exception):
    """The exchange with the upstream failed."""

    nothing_sent = False  # True: the instance never saw the request, any may take it


class ConnectFailed(UpstreamError):
    """No connection: nothing was sent, so another instance may be tried."""

    nothing_sent = True


class UpstreamTimedOut(UpstreamError):
    pass


class UpstreamStalled(UpstreamTimedOut):
    """No answer within the stall time from an instance that answered nothing else
    meanwhile (frozen: a long pause, a stopped process): given up early."""


class UpstreamBroken(UpstreamError):
    """The connection dropped or the upstream spoke something that is not HTTP/1.1."""

    def __init__(self, message: str, *, before_response: bool = False) -> None:
        super().__init__(message)
        self.before_response = before_response


class Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.active = False  # a request is in flight on this connection
        self.idle_since = 0.0
        self._write_waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = False
        self.framed = False  # Content-Length or chunked: the end is not the connection's end
        self.complete = False
        self.reusable = True
        self.head: asyncio.Future[None] = self._loop.create_future()
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.error: UpstreamError | None = None
        self._informational = False
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.active:
            return
        if not self.head.done():
            self.head.set_exception(
                UpstreamBroken(f"connection closed before a response ({exc})", before_response=True)
            )
        elif not self.complete:
            if self.framed:
                self.error = UpstreamBroken("connection closed inside the response body")
            else:
                self.complete = True  # a body delimited by the end of the connection
        self._wake(self._waiter)
        self._wake(self._write_waiter)

    def data_received(self, data: bytes) -> None:
        if not self.active:  # nothing was asked: the connection is out of step, drop it
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamBroken(f"invalid HTTP from upstream: {exc}"))

    def pause_writing(self) -> None:
        self._write_waiter = self._loop.create_future()

    def resume_writing(self) -> None:
        self._wake(self._write_waiter)
        self._write_waiter = None

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 1xx: an interim response; the real one follows
            self._informational = True
            self.headers = []
            return
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        self.framed = any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        ) or status in (204, 304)
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake(self._waiter)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self.complete = True
        self._wake(self._waiter)

    # used by the pool and the response
    @staticmethod
    def _wake(waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if not self.head.done():
            self.head.set_exception(error)
        else:
            self.error = error
        self.close()
        self._wake(self._waiter)

    def close(self) -> None:
        self.reusable = False
        self.active = False  # whoever closes has its answer: connection_lost reports nothing
        if self.head.done() and not self.head.cancelled():
            self.head.exception()  # retrieved, so asyncio does not report it as lost
        if self.transport is not None:
            self.transport.close()

    def take(self) -> bytes:
        """Everything buffered, resuming the upstream once the buffer is drained."""
        chunk = self.chunks.popleft() if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    async def wait(self, timeout: float, *, for_head: bool = False) -> None:
        """Until the head (or more body) arrives; UpstreamTimedOut after `timeout`."""
        if for_head:
            waiter = self.head
        else:
            waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout, self._on_timeout, waiter)
        try:
            await waiter
        finally:
            timer.cancel()

    def _on_timeout(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(UpstreamTimedOut("no answer in time"))
            self.close()

    async def writable(self, timeout: float) -> None:
        waiter = self._write_waiter
        if waiter is not None and not waiter.done():
            timer = self._loop.call_later(timeout, self._on_timeout, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
