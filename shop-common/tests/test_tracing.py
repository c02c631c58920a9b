"""Traces in a service: the gateway's traceparent continued, a server span, SQL spans."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text

from shop_common.credential import CredentialVerifier
from shop_common.database import create_engine
from shop_common.keys import load_public_key
from shop_common.service_app import install_service_defaults
from shop_common.settings import ServiceSettings
from shop_common.testing import GatewayKeys, sqlite_url, write_gateway_keys
from shop_common.tracing import Tracing

pytestmark = pytest.mark.anyio
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


@pytest.fixture
def keys(tmp_path: Path) -> GatewayKeys:
    return write_gateway_keys(tmp_path)


@pytest.fixture
async def client(
    tmp_path: Path, keys: GatewayKeys, exporter: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(data_dir=tmp_path)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = create_engine(sqlite_url(tmp_path))
    app = FastAPI(title="svc", redirect_slashes=False)

    @app.get("/things/{thing_id}")
    async def read(thing_id: str, request: Request) -> dict[str, int]:
        async with engine.connect() as connection:
            value = await connection.scalar(text("SELECT :n"), {"n": len(thing_id)})
        return {"value": value}

    verifier = CredentialVerifier(load_public_key(settings.gateway_public_key_path), "svc")
    install_service_defaults(app, settings=settings, verifier=verifier, tracing=Tracing(provider))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://t", auth=keys.auth()
        ) as c:
            yield c
    finally:
        await engine.dispose()
        provider.shutdown()


async def test_a_request_continues_the_callers_trace_down_to_the_database(
    client: httpx.AsyncClient, keys: GatewayKeys, exporter: InMemorySpanExporter
) -> None:
    headers = {
        **keys.headers("svc"),
        "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
    }
    response = await client.get("/things/abc", headers=headers)
    assert response.status_code == 200
    spans = {span.name: span for span in exporter.get_finished_spans()}
    server = spans["GET /things/{thing_id}"]
    sql = spans["SELECT"]
    assert server.kind is SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_ID
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200
    assert sql.context.trace_id == server.context.trace_id
    assert sql.parent is not None and sql.parent.span_id == server.context.span_id
    assert sql.attributes is not None
    assert sql.attributes["db.system.name"] == "sqlite"
    assert "abc" not in str(sql.attributes)  # bound values never recorded


async def test_a_request_without_traceparent_starts_a_trace(
    client: httpx.AsyncClient, keys: GatewayKeys, exporter: InMemorySpanExporter
) -> None:
    response = await client.get("/things/x", headers=keys.headers("svc"))
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    assert {span.name for span in spans} == {"GET /things/{thing_id}", "SELECT"}
    assert len({span.context.trace_id for span in spans}) == 1


async def test_refused_requests_are_traced_with_their_status(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    response = await client.get("/things/x")  # no gateway credential
    assert response.status_code == 401
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 401


@pytest.mark.parametrize(
    ("endpoint", "traced"),
    [
        pytest.param(None, False, id="unset"),
        pytest.param("", False, id="empty"),
        pytest.param("http://127.0.0.1:4318", True, id="set"),
    ],
)
def test_the_otlp_endpoint_setting_turns_tracing_on(
    tmp_path: Path, keys: GatewayKeys, endpoint: str | None, traced: bool
) -> None:
    settings = ServiceSettings(data_dir=tmp_path, otel_exporter_otlp_endpoint=endpoint)
    app = FastAPI(title="svc")
    verifier = CredentialVerifier(load_public_key(settings.gateway_public_key_path), "svc")
    install_service_defaults(app, settings=settings, verifier=verifier)
    tracings = [m.kwargs["tracing"] for m in app.user_middleware if "tracing" in m.kwargs]
    assert len(tracings) == int(traced)
    for tracing in tracings:
        assert isinstance(tracing, Tracing)
        tracing.shutdown()
