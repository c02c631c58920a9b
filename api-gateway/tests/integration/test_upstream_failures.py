"""Upstream failures, body limits and streaming, over real sockets where it matters."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from api_gateway.main import create_app

pytestmark = pytest.mark.anyio

LIMIT = 4096


@contextlib.asynccontextmanager
async def garbage_server() -> AsyncIterator[str]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A readiness probe may connect and hang up without a request: no error, no leak.
        with (
            contextlib.closing(writer),
            contextlib.suppress(ConnectionError, asyncio.IncompleteReadError),
        ):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"SMTP ready\r\n\r\n")
            await writer.drain()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def real_gateway(serve_app, settings) -> AsyncIterator[str]:
    """The gateway on uvicorn: what streaming and cut bodies need (ASGITransport buffers)."""
    async with serve_app(create_app(settings), lifespan="on") as url:
        yield url


async def test_a_refused_upstream_gives_503_at_once(make_settings, open_gateway, refused_url):
    settings = make_settings(product_service_url=refused_url, upstream_timeout=60)
    async with open_gateway(settings) as client:
        with anyio.fail_after(5):  # far below the 60 s timeout: no waiting on a dead upstream
            response = await client.get("/products")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 503


async def test_a_slow_upstream_gives_504_after_the_timeout(make_settings, open_gateway):
    async with open_gateway(make_settings(upstream_timeout=0.3)) as client:
        with anyio.fail_after(5):
            response = await client.get("/products?delay=3")
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_upstream_that_does_not_speak_http_gives_502(make_settings, open_gateway):
    async with garbage_server() as url, open_gateway(make_settings(product_service_url=url)) as c:
        response = await c.get("/products")
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_body_over_the_limit_by_content_length_gets_413(
    make_settings, open_gateway, tokens, product_upstream
) -> None:
    async with open_gateway(make_settings(max_body_bytes=LIMIT)) as client:
        response = await client.post(
            "/products", headers=tokens.bearer(), content=b"x" * (LIMIT + 1)
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        at_limit = await client.post("/products", headers=tokens.bearer(), content=b"x" * LIMIT)
        assert at_limit.status_code == 200
    assert [r.body for r in product_upstream.forwarded] == [b"x" * LIMIT]


async def test_401_comes_before_413(make_settings, open_gateway) -> None:
    async with open_gateway(make_settings(max_body_bytes=LIMIT)) as client:
        response = await client.post("/products", content=b"x" * (LIMIT + 1))
    assert response.status_code == 401


async def test_a_streamed_body_that_grows_past_the_limit_gets_413(
    make_settings, serve_app, tokens, product_upstream
) -> None:
    async def growing() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 1024

    async with (
        real_gateway(serve_app, make_settings(max_body_bytes=LIMIT)) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        response = await client.post("/products", headers=tokens.bearer(), content=growing())
    assert response.status_code == 413
    assert all(len(r.body) <= LIMIT for r in product_upstream.forwarded)


@pytest.mark.parametrize(
    "chunked", [pytest.param(False, id="content-length"), pytest.param(True, id="chunked")]
)
async def test_large_request_bodies_stream_through(
    make_settings, serve_app, tokens, product_upstream, chunked
) -> None:
    payload = bytes(range(256)) * 2048  # 512 KiB: over the size sent in one write

    async def parts() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 50_000):
            yield payload[start : start + 50_000]

    async with (
        real_gateway(serve_app, make_settings()) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        body = parts() if chunked else payload
        response = await client.put("/products/abc", headers=tokens.bearer(), content=body)
    assert response.status_code == 200
    (request,) = product_upstream.forwarded
    assert request.body == payload


@pytest.mark.parametrize("framing", ["", "&chunked=1"])
async def test_a_large_response_streams_to_the_client(make_settings, serve_app, framing):
    size = 16 * 1024 * 1024
    async with (
        real_gateway(serve_app, make_settings()) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        client.stream("GET", f"/products?size={size}{framing}") as response,
    ):
        assert response.status_code == 200
        assert response.headers["x-request-id"]
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
    assert received == size


async def test_the_gateway_speaks_http_on_a_real_socket(make_settings, serve_app) -> None:
    async with (
        real_gateway(serve_app, make_settings()) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        responses = await asyncio.gather(*(client.get(f"/products/{n}") for n in range(20)))
        head = await client.head("/products/1")
        health = await client.get("/health")
    assert {r.status_code for r in responses} == {200}
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 0
    assert health.json() == {"status": "ok"}


async def test_a_search_flood_is_refused_at_the_gateway_while_other_routes_answer(
    make_settings, open_gateway, product_upstream
) -> None:
    async with open_gateway(make_settings(search_concurrency=2)) as client:
        slow = [
            asyncio.create_task(client.get("/products", params={"q": "rare", "delay": "1"}))
            for _ in range(2)
        ]
        while sum(b"q=rare" in r.query for r in product_upstream.requests) < 2:
            await asyncio.sleep(0.01)
        refused = await client.get("/products", params={"q": "rare"})
        other = await client.get(f"/products/{uuid.uuid4()}")
        done = await asyncio.gather(*slow)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert other.status_code == 200
    assert [r.status_code for r in done] == [200, 200]
