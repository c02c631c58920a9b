"""Starting, stopping, and what a client sees when something inside the gateway breaks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api_gateway.main import create_app
from api_gateway.proxy import Proxy

pytestmark = pytest.mark.anyio


async def lifespan(app: Any, *messages: str) -> list[dict[str, Any]]:
    """Drive the ASGI lifespan protocol; returns what the app sent."""
    incoming = [{"type": message} for message in messages]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    return sent


async def test_the_asgi_lifespan_starts_and_stops_the_gateway(make_settings) -> None:
    app = create_app(make_settings())
    sent = await lifespan(app, "lifespan.startup", "lifespan.shutdown")
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert app.settings.gateway_public_key_path.exists()  # created for a bare `serve`


async def test_an_unusable_credential_key_stops_the_start(make_settings, tmp_path) -> None:
    bad_key = tmp_path / "not-a-key.pem"
    bad_key.write_text("not a key")
    app = create_app(make_settings(gateway_private_key_file=bad_key))
    sent = await lifespan(app, "lifespan.startup")
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]


async def test_an_internal_error_is_a_500_problem_without_internals(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Proxy, "forward", broken)
    response = await client.get("/products", headers={"x-request-id": "oops"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == "oops"
    assert "secret" not in response.text


@contextlib.asynccontextmanager
async def cuts_body_short() -> AsyncIterator[str]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A readiness probe may connect and hang up without a request: no error, no leak.
        with (
            contextlib.closing(writer),
            contextlib.suppress(ConnectionError, asyncio.IncompleteReadError),
        ):
            await reader.readuntil(b"\r\n\r\n")
            # Past the 64 KiB a GET's body is buffered up to (smaller ones get a clean 502).
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n" + b"z" * 100_000)
            await writer.drain()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_an_upstream_that_dies_mid_body_cuts_the_response(
    make_settings, serve_app, caplog: pytest.LogCaptureFixture
) -> None:
    async with cuts_body_short() as upstream_url:
        settings = make_settings(product_service_url=upstream_url)
        async with (
            serve_app(create_app(settings), lifespan="on") as url,
            httpx.AsyncClient(base_url=url) as client,
        ):
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/products")
            # The gateway itself is fine afterwards.
            assert (await client.get("/health")).status_code == 200
    assert any(r.getMessage() == "response cut short" for r in caplog.records)
