"""Traces through the gateway: a span per request, traceparent passed on to the upstream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text

from api_gateway.config import Settings
from api_gateway.main import create_app
from shop_common.credential import CredentialVerifier
from shop_common.database import create_engine
from shop_common.keys import load_public_key
from shop_common.service_app import install_service_defaults
from shop_common.settings import ServiceSettings
from shop_common.testing import sqlite_url, write_gateway_keys
from shop_common.tracing import Tracing

pytestmark = pytest.mark.anyio
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


@contextlib.asynccontextmanager
async def traced_gateway(
    settings: Settings, exporter: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        async with create_app(settings, tracing=Tracing(provider)).running() as app:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as c:
                yield c
    finally:
        provider.shutdown()


def traceparent_parts(value: str | None) -> tuple[str, str]:
    assert value is not None
    version, trace_id, span_id, flags = value.split("-")
    assert version == "00"
    assert int(flags, 16) & 1  # sampled
    return trace_id, span_id


async def test_the_upstream_gets_the_gateway_span_as_its_parent(
    make_settings, product_upstream, exporter: InMemorySpanExporter
) -> None:
    async with traced_gateway(make_settings(), exporter) as client:
        response = await client.get("/products/6f0c7d1e-0000-4000-8000-000000000001")
    assert response.status_code == 200
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /products/{id}"
    assert span.kind is SpanKind.SERVER
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 200
    trace_id, parent_id = traceparent_parts(product_upstream.forwarded[-1].header("traceparent"))
    assert trace_id == format(span.context.trace_id, "032x")
    assert parent_id == format(span.context.span_id, "016x")


async def test_an_incoming_traceparent_is_continued(
    make_settings, product_upstream, exporter: InMemorySpanExporter
) -> None:
    headers = {"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01", "tracestate": "k=v"}
    async with traced_gateway(make_settings(), exporter) as client:
        response = await client.get("/products", headers=headers)
    assert response.status_code == 200
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == CLIENT_SPAN_ID
    forwarded = product_upstream.forwarded[-1]
    # One traceparent upstream, naming the gateway's span (not the client's) as parent.
    assert [value for name, value in forwarded.headers if name == "traceparent"] == [
        f"00-{TRACE_ID}-{format(span.context.span_id, '016x')}-01"
    ]
    assert forwarded.header("tracestate") == "k=v"


async def test_refused_and_own_requests_are_spans_too(
    make_settings, exporter: InMemorySpanExporter
) -> None:
    async with traced_gateway(make_settings(), exporter) as client:
        assert (await client.get("/auth/me")).status_code == 401
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
    names = [
        (span.name, (span.attributes or {}).get("http.response.status_code"))
        for span in exporter.get_finished_spans()
    ]
    assert names == [("GET /auth/me", 401), ("GET /health", 200), ("GET", 404)]


async def test_without_tracing_a_client_traceparent_passes_through_untouched(
    client, product_upstream
) -> None:
    value = f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"
    response = await client.get("/products", headers={"traceparent": value})
    assert response.status_code == 200
    assert product_upstream.forwarded[-1].header("traceparent") == value


async def test_one_trace_from_the_gateway_through_a_service_to_its_database(
    make_settings, serve_app, tmp_path, exporter: InMemorySpanExporter
) -> None:
    """A real service app (shop_common's defaults, a SQLite engine) behind the gateway."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    write_gateway_keys(tmp_path)  # the gateway signs with these, the service checks
    service_settings = ServiceSettings(data_dir=tmp_path)
    public_key = load_public_key(service_settings.gateway_public_key_path)
    engine = create_engine(sqlite_url(tmp_path))
    service = FastAPI(title="product-service", redirect_slashes=False)

    @service.get("/products/{product_id}")
    async def read(product_id: str) -> dict[str, int]:
        async with engine.connect() as connection:
            return {"n": await connection.scalar(text("SELECT :n"), {"n": len(product_id)})}

    install_service_defaults(
        service,
        settings=service_settings,
        verifier=CredentialVerifier(public_key, "product-service"),
        tracing=Tracing(provider),
    )
    try:
        async with serve_app(service) as url:
            settings = make_settings(product_service_url=url)
            async with traced_gateway(settings, exporter) as client:
                response = await client.get("/products/6f0c7d1e-0000-4000-8000-000000000001")
    finally:
        await engine.dispose()
        provider.shutdown()
    assert response.status_code == 200
    finished = exporter.get_finished_spans()
    # The gateway's readiness probes of the service are traces of their own.
    (gateway,) = [span for span in finished if span.name == "GET /products/{id}"]
    spans = {
        span.name: span for span in finished if span.context.trace_id == gateway.context.trace_id
    }
    assert set(spans) == {"GET /products/{id}", "GET /products/{product_id}", "SELECT"}
    server, sql = spans["GET /products/{product_id}"], spans["SELECT"]
    assert server.parent is not None and server.parent.span_id == gateway.context.span_id
    assert sql.parent is not None and sql.parent.span_id == server.context.span_id


async def test_spans_go_to_the_otlp_endpoint_when_one_is_set(
    make_settings, product_upstream, serve_app
) -> None:
    received: list[tuple[str, bytes]] = []

    async def collector(scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with serve_app(collector) as url:
        gateway = create_app(make_settings(otel_exporter_otlp_endpoint=url + "/"))
        assert gateway.tracing is not None
        async with gateway.running():
            transport = httpx.ASGITransport(app=gateway)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as c:
                assert (await c.get("/products")).status_code == 200
        # The exporter posts from its own thread: the collector needs this loop free.
        await asyncio.to_thread(gateway.tracing.shutdown)
    assert received
    path, body = received[0]
    assert path == "/v1/traces"
    assert b"api-gateway" in body and b"GET /products" in body


def test_without_an_endpoint_there_is_no_tracing(make_settings) -> None:
    assert create_app(make_settings()).tracing is None
