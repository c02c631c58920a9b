"""One upstream instance: a pool of keep-alive httptools connections (asyncio).

Chosen by measurement over aiohttp and httpx (docs/decisions/gateway-upstream-client.md).
It does only what the gateway needs: one request at a time per connection, a request
body given as bytes or streamed, the response streamed with back-pressure. It never
sends HEAD (the gateway forwards HEAD as GET), so a response body is framed by
Content-Length, chunked encoding, or the end of the connection. upstream.py balances
over the instances of a service.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import ssl
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from api_gateway.breaker import InstanceHealth
from api_gateway.connection import (
    ConnectFailed,
    Connection,
    UpstreamBroken,
    UpstreamError,
    UpstreamStalled,
    UpstreamTimedOut,
)

# Below uvicorn's 5 s keep-alive, so an upstream never closes a connection as we reuse it.
IDLE_SECONDS = 2.0
MAX_IDLE = 128
STALL_STEP = 0.25  # how often a waiting GET checks whether its instance froze
IDEMPOTENT = frozenset({b"GET", b"PUT", b"DELETE", b"OPTIONS"})
Body = bytes | AsyncIterator[bytes] | None


class UpstreamResponse:
    """Status, headers and a streamed body; `release` hands the connection back."""

    __slots__ = ("_conn", "_pool", "headers", "status")

    def __init__(self, conn: Connection, pool: ConnectionPool) -> None:
        self._conn = conn
        self._pool = pool
        self.status = conn.status
        self.headers = conn.headers

    @property
    def complete(self) -> bool:
        """The whole body has arrived (read it with one `read`)."""
        return self._conn.complete and not self._conn.chunks

    async def settle(self, timeout: float, limit: int) -> None:
        """Wait until a body of up to `limit` bytes is all in, before any of it is relayed.

        A GET whose instance dies mid-body can then still go to another instance.
        """
        conn = self._conn
        while not conn.complete and conn.buffered <= limit:
            if conn.error is not None or conn.closed:
                raise UpstreamBroken("connection closed inside the response body")
            await conn.wait(timeout)
        if conn.error is not None:
            raise UpstreamBroken("connection closed inside the response body")

    async def read(self, timeout: float) -> bytes:
        """The next part of the body; b"" at its end."""
        conn = self._conn
        while True:
            if conn.chunks:
                return conn.take()
            if conn.complete:
                return b""
            if conn.error is not None:
                raise conn.error
            if conn.closed:
                raise UpstreamBroken("connection closed inside the response body")
            await conn.wait(timeout)

    def release(self) -> None:
        """Back to the pool when the exchange finished cleanly, else closed."""
        self._pool.health.outstanding -= 1
        self._pool.release(self._conn)


class ConnectionPool:
    """Keep-alive connections to one upstream instance (scheme://host:port[/prefix])."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL")
        self.url = url
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._host_header = parts.netloc.encode("idna")
        self._prefix = parts.path.rstrip("/").encode("ascii")
        self._idle: list[Connection] = []
        self.health = InstanceHealth()

    async def request(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: Body,
        *,
        timeout: float,
        body_length: int | None = None,
        stall_after: float | None = None,
    ) -> UpstreamResponse:
        """Send one request; returns once the response head is in (within `timeout`).

        A reused connection that turns out to be closed is retried once on a new one,
        for idempotent methods with a replayable body. With `stall_after`, UpstreamStalled
        once that long passed with no answer while the instance answered nothing else.
        """
        if method == b"HEAD":
            raise ValueError("the upstream client does not send HEAD; forward it as GET")
        health = self.health
        health.outstanding += 1
        sent_at = time.monotonic()
        try:
            response = await self._request(
                method, target, headers, body, timeout, body_length, stall_after
            )
        except (ConnectFailed, UpstreamStalled) as exc:
            health.outstanding -= 1
            health.failed(refused=True)  # gone or frozen: skip it from now on
            if isinstance(exc, ConnectFailed):
                self.close()  # its idle connections are as dead as the process behind them
            raise
        except UpstreamTimedOut:
            health.outstanding -= 1
            if not health.answered_since(sent_at):
                health.failed()  # else one slow route: the instance itself is answering
            raise
        except UpstreamError:
            health.outstanding -= 1
            health.failed()
            raise
        except BaseException:
            health.outstanding -= 1
            raise
        health.succeeded()
        return response

    async def _request(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: Body,
        timeout: float,
        body_length: int | None,
        stall_after: float | None,
    ) -> UpstreamResponse:
        chunked = body is not None and not isinstance(body, bytes) and body_length is None
        head = self._head(method, target, headers, body, body_length, chunked=chunked)
        conn = self._take_idle()
        if conn is not None:
            try:
                return await self._exchange(conn, head, body, timeout, stall_after, chunked)
            except UpstreamBroken as exc:
                replayable = body is None or isinstance(body, bytes)
                if not (exc.before_response and replayable and method in IDEMPOTENT):
                    raise
        conn = await self._connect(timeout)
        return await self._exchange(conn, head, body, timeout, stall_after, chunked)

    def _head(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: Body,
        body_length: int | None,
        *,
        chunked: bool,
    ) -> bytes:
        parts = [method, b" ", self._prefix, target, b" HTTP/1.1\r\nhost: ", self._host_header]
        for name, value in headers:
            parts += (b"\r\n", name, b": ", value)
        if isinstance(body, bytes):
            parts += (b"\r\ncontent-length: ", b"%d" % len(body))
        elif chunked:
            parts.append(b"\r\ntransfer-encoding: chunked")
        elif body_length is not None:
            parts += (b"\r\ncontent-length: ", b"%d" % body_length)
        elif method in (b"POST", b"PUT", b"PATCH"):
            parts.append(b"\r\ncontent-length: 0")
        parts.append(b"\r\n\r\n")
        return b"".join(parts)

    async def _exchange(
        self,
        conn: Connection,
        head: bytes,
        body: Body,
        timeout: float,
        stall_after: float | None,
        chunked: bool,
    ) -> UpstreamResponse:
        transport = conn.transport
        assert transport is not None
        conn.active = True
        try:
            if isinstance(body, bytes):
                transport.write(head + body)
            else:
                transport.write(head)
                if body is not None:
                    await self._stream_body(conn, body, chunked=chunked, timeout=timeout)
            if not conn.head.done():
                if stall_after is None or stall_after >= timeout:
                    await conn.wait(timeout, for_head=True)
                else:
                    await self._wait_unless_stalled(conn, timeout, stall_after)
            conn.head.result()  # raises the failure that ended the wait, if any
        except BaseException:
            conn.close()
            raise
        return UpstreamResponse(conn, self)

    async def _wait_unless_stalled(
        self, conn: Connection, timeout: float, stall_after: float
    ) -> None:
        """Wait for the head; give up with UpstreamStalled once it is `stall_after` late
        and the instance answered nothing (no request, no /ready probe: they come every
        second) for 1.5 times that: the outstanding request's age says it is frozen."""
        sent_at = time.monotonic()
        deadline = sent_at + timeout
        quiet = stall_after * 1.5
        while not conn.head.done():
            now = time.monotonic()
            if now >= deadline:
                raise UpstreamTimedOut("no answer in time")
            silent_for = now - max(self.health.last_answer, sent_at)
            if now - sent_at >= stall_after and silent_for >= quiet:
                raise UpstreamStalled(f"{self.url} answered nothing for {silent_for:.1f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(conn.head), min(STALL_STEP, deadline - now))

    @staticmethod
    async def _stream_body(
        conn: Connection, body: AsyncIterator[bytes], *, chunked: bool, timeout: float
    ) -> None:
        transport = conn.transport
        assert transport is not None
        async for chunk in body:
            if conn.head.done():  # the upstream answered early; the rest is not needed
                conn.reusable = False
                return
            if conn.closed:
                raise UpstreamBroken("connection closed while sending the body")
            if chunk:
                transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await conn.writable(timeout)
        if chunked and not conn.closed:
            transport.write(b"0\r\n\r\n")

    async def _connect(self, timeout: float) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(loop), self._host, self._port, ssl=self._ssl
                )
        except TimeoutError as exc:
            timed_out = UpstreamTimedOut(f"connecting to {self.url} timed out")
            timed_out.nothing_sent = True
            raise timed_out from exc
        except OSError as exc:  # refused, unreachable, unknown host
            raise ConnectFailed(f"cannot connect to {self.url}: {exc}") from exc
        return conn

    def _take_idle(self) -> Connection | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_SECONDS and not _dropped(conn):
                return conn
            conn.close()
        return None

    def release(self, conn: Connection) -> None:
        if (
            conn.complete
            and conn.reusable
            and conn.keep_alive
            and not conn.closed
            and not conn.chunks
            and len(self._idle) < MAX_IDLE
        ):
            conn.idle_since = asyncio.get_running_loop().time()
            conn.active = False
            conn._reset()
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _dropped(conn: Connection) -> bool:
    """An idle connection with something to read was closed by the upstream (or is out of
    step): urllib3's and aiohttp's check before reuse. The event loop may not have read
    that end yet (the upstream closed right after its answer, as a server does after a
    500), and a write sent on it would fail with no way to know whether it was applied.
    One poll(2) with no wait; poll, not select, as descriptors may be past FD_SETSIZE."""
    transport = conn.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))
