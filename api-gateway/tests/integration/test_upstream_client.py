"""The httptools upstream client against real sockets: scripted raw servers and uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from api_gateway.connection import ConnectFailed, UpstreamBroken, UpstreamTimedOut
from api_gateway.upstream import ConnectionPool, Upstream, fetch

pytestmark = pytest.mark.anyio

OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
Script = Callable[[int, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    """Answers each request by a script: (number on its connection, reader, writer) -> go on?"""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        on_this_connection = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                self.bodies.append(await read_body(reader, head))
                self.requests += 1
                on_this_connection += 1
                if not await self.script(on_this_connection, reader, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                return b"".join(part[:-2] for part in parts)
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":")[1]))
    return b""


@contextlib.asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[tuple[RawServer, str]]:
    server = RawServer(script)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        listener.close()
        await listener.wait_closed()


async def answer(response: bytes, *, keep: bool = True) -> Script:
    async def script(_: int, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(response)
        await writer.drain()
        return keep

    return script


async def read_all(pool: ConnectionPool, target: bytes = b"/x") -> tuple[int, bytes]:
    return await fetch(pool, target, [], timeout=2.0, limit=64 * 1024 * 1024)


async def test_sequential_requests_reuse_one_keep_alive_connection() -> None:
    async with raw_server(await answer(OK)) as (server, url):
        pool = ConnectionPool(url)
        for _ in range(20):
            assert await read_all(pool) == (200, b"ok")
        pool.close()
    assert server.connections == 1
    assert server.requests == 20


async def test_the_request_head_carries_host_headers_and_framing() -> None:
    async with raw_server(await answer(OK)) as (server, url):
        pool = ConnectionPool(url + "/prefix")
        response = await pool.request(
            b"POST", b"/products?q=1", [(b"x-request-id", b"abc")], b'{"a":1}', timeout=2.0
        )
        await response.read(2.0)
        response.release()
        pool.close()
    head = server.heads[0].decode()
    assert head.startswith("POST /prefix/products?q=1 HTTP/1.1\r\n")
    assert f"host: {url.removeprefix('http://')}\r\n" in head
    assert "x-request-id: abc\r\n" in head
    assert "content-length: 7\r\n" in head
    assert server.bodies == [b'{"a":1}']


async def test_a_streamed_body_of_unknown_length_goes_chunked() -> None:
    async def parts() -> AsyncIterator[bytes]:
        for index in range(5):
            yield b"part%d;" % index
            await asyncio.sleep(0)

    async with raw_server(await answer(OK)) as (server, url):
        pool = ConnectionPool(url)
        response = await pool.request(b"PUT", b"/x", [], parts(), timeout=2.0)
        assert await response.read(2.0) == b"ok"
        response.release()
        pool.close()
    assert b"transfer-encoding: chunked" in server.heads[0]
    assert server.bodies == [b"part0;part1;part2;part3;part4;"]


@pytest.mark.parametrize(
    ("response", "body"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"hello world",
            id="chunked",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end", b"until the end", id="eof"
        ),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", b"", id="no-content"),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n" + OK, b"ok", id="interim-response-skipped"),
    ],
)
async def test_response_bodies_in_every_framing(response: bytes, body: bytes) -> None:
    async with raw_server(await answer(response, keep=False)) as (_, url):
        pool = ConnectionPool(url)
        assert (await read_all(pool))[1] == body
        pool.close()


async def test_a_large_response_streams_with_back_pressure() -> None:
    size = 8 * 1024 * 1024
    response = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size + b"y" * size
    async with raw_server(await answer(response)) as (_, url):
        pool = ConnectionPool(url)
        upstream_response = await pool.request(b"GET", b"/big", [], None, timeout=2.0)
        received = 0
        largest = 0
        while chunk := await upstream_response.read(2.0):
            received += len(chunk)
            largest = max(largest, len(chunk))
            await asyncio.sleep(0.001)  # a slow client: the gateway must not buffer it all
        upstream_response.release()
        pool.close()
    assert received == size
    assert largest < 2 * 1024 * 1024


async def test_connection_refused_is_connect_failed(refused_url: str) -> None:
    with pytest.raises(ConnectFailed):
        await read_all(ConnectionPool(refused_url))


async def test_an_upstream_that_never_answers_times_out() -> None:
    async def silent(_: int, reader: asyncio.StreamReader, __: asyncio.StreamWriter) -> bool:
        await reader.read()  # until the client gives up and closes
        return False

    async with raw_server(silent) as (_, url):
        pool = ConnectionPool(url)
        with pytest.raises(UpstreamTimedOut):
            await fetch(pool, b"/slow", [], timeout=0.2)
        pool.close()


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(b"this is not HTTP\r\n\r\n", id="garbage"),
        pytest.param(b"", id="closed-without-answer"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\ntoo short", id="truncated-body"
        ),
    ],
)
async def test_a_broken_upstream_is_reported_as_broken(response: bytes) -> None:
    async with raw_server(await answer(response, keep=False)) as (_, url):
        pool = ConnectionPool(url)
        with pytest.raises(UpstreamBroken):
            await read_all(pool)
        pool.close()


async def closes_after_first(number: int, _: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
    """Answers the first request on a connection, then drops the connection on the next."""
    if number == 1:
        w.write(OK)
        await w.drain()
        return True
    return False


async def test_an_idempotent_request_on_a_stale_connection_is_retried() -> None:
    async with raw_server(closes_after_first) as (server, url):
        pool = ConnectionPool(url)
        assert await read_all(pool) == (200, b"ok")
        assert await read_all(pool) == (200, b"ok")
        pool.close()
    assert server.connections == 2


async def test_a_post_on_a_stale_connection_is_not_replayed() -> None:
    async with raw_server(closes_after_first) as (server, url):
        pool = ConnectionPool(url)
        assert await read_all(pool) == (200, b"ok")
        with pytest.raises(UpstreamBroken):
            await pool.request(b"POST", b"/x", [], b"{}", timeout=2.0)
        pool.close()
    assert server.connections == 1


async def test_a_write_is_never_sent_on_a_connection_the_upstream_already_closed() -> None:
    # The upstream answers as if keeping the connection, then closes it (uvicorn after
    # a 500 it re-raised). The event loop is kept from reading that close (a busy
    # gateway), so only the check before reuse can see it.
    async with raw_server(await answer(OK, keep=False)) as (server, url):
        pool = ConnectionPool(url)
        assert await read_all(pool) == (200, b"ok")
        while server.connections < 1 or server.requests < 1:
            await asyncio.sleep(0.01)
        time.sleep(0.2)  # the FIN arrives while the loop is blocked
        response = await pool.request(b"POST", b"/x", [], b"{}", timeout=2.0)
        response.release()
        assert response.status == 200
        pool.close()
    assert server.connections == 2
    assert server.requests == 2


async def test_instances_take_turns_and_a_refused_one_is_skipped(refused_url: str) -> None:
    async with (
        raw_server(await answer(OK)) as (first, first_url),
        raw_server(await answer(OK)) as (second, second_url),
    ):
        upstream = Upstream("product-service", [first_url, refused_url, second_url])
        for _ in range(6):
            assert (await fetch(upstream, b"/x", [], timeout=2.0))[0] == 200
        upstream.close()
    assert first.requests + second.requests == 6
    assert first.requests >= 2
    assert second.requests >= 2


async def test_all_instances_refused_is_connect_failed(refused_url: str) -> None:
    upstream = Upstream("auth-service", [refused_url, refused_url])
    with pytest.raises(ConnectFailed):
        await fetch(upstream, b"/x", [], timeout=2.0)


async def test_head_is_never_sent_upstream() -> None:
    with pytest.raises(ValueError):
        await ConnectionPool("http://127.0.0.1:1").request(b"HEAD", b"/", [], None, timeout=1)
