"""OpenTelemetry traces: a server span per request, W3C traceparent in and out, SQL spans.

Only imported when tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT set, or a test hands a
provider in): without it no process loads opentelemetry, and the request path is as
before. Each app holds its own TracerProvider rather than the global one, so several
apps in one process (the tests) do not fight over it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, MutableSequence
from contextvars import ContextVar
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import Engine, event
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})
# The tracer of the request being handled: the SQL listeners (one set per process,
# on every Engine) find it here, and do nothing outside a traced request.
_request_tracer: ContextVar[Tracer | None] = ContextVar("request_tracer", default=None)
_SPANS_KEY = "shop_tracing_spans"


class Tracing:
    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("shop")

    @classmethod
    def to_otlp(cls, service_name: str, endpoint: str) -> Tracing:
        """Spans batched and sent over OTLP/HTTP to `endpoint` (its /v1/traces)."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider)

    @contextlib.contextmanager
    def server_span(
        self, method: str, raw_headers: Iterable[tuple[bytes, bytes]]
    ) -> Iterator[Span]:
        """The request's span, continuing the caller's trace when it sent a traceparent."""
        parent = _extract(raw_headers)
        token = _request_tracer.set(self.tracer)
        try:
            with self.tracer.start_as_current_span(
                method, context=parent, kind=SpanKind.SERVER, record_exception=False
            ) as span:
                yield span
        finally:
            _request_tracer.reset(token)

    @contextlib.contextmanager
    def message_span(
        self, name: str, kind: SpanKind, traceparent: str | None
    ) -> Iterator[tuple[Span, str | None]]:
        """A span for publishing or handling an event, child of the event's traceparent;
        yields it with its own traceparent (to put on the message). SQL inside is traced."""
        parent = _PROPAGATOR.extract({"traceparent": traceparent} if traceparent else {})
        token = _request_tracer.set(self.tracer)
        try:
            with self.tracer.start_as_current_span(name, context=parent, kind=kind) as span:
                carrier: dict[str, str] = {}
                _PROPAGATOR.inject(carrier)
                yield span, carrier.get("traceparent")
        finally:
            _request_tracer.reset(token)

    @staticmethod
    def finish(span: Span, method: str, route: str | None, status: int) -> None:
        """Name the span by route template (never the raw path) and record the status."""
        if route:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.request.method", method)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))

    @staticmethod
    def inject(headers: MutableSequence[tuple[bytes, bytes]]) -> None:
        """Replace any traceparent/tracestate in `headers` with the current span's."""
        headers[:] = [(name, value) for name, value in headers if name not in _TRACE_HEADERS]
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        headers.extend((name.encode(), value.encode("latin-1")) for name, value in carrier.items())

    def shutdown(self) -> None:
        self.provider.shutdown()


def _extract(raw_headers: Iterable[tuple[bytes, bytes]]) -> Context:
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in raw_headers
        if name in _TRACE_HEADERS
    }
    return _PROPAGATOR.extract(carrier)


class TracingMiddleware:
    """A service's server span per request, named by its route template."""

    def __init__(self, app: ASGIApp, *, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.tracing.server_span(scope["method"], scope["headers"]) as span:
            try:
                await self.app(scope, receive, observe)
            finally:
                route = getattr(scope.get("route"), "path", None)
                self.tracing.finish(span, scope["method"], route, status)


def trace_sql() -> None:
    """SQL spans for every engine of the process, inside traced requests only (idempotent)."""
    if not event.contains(Engine, "before_cursor_execute", _before_cursor_execute):
        event.listen(Engine, "before_cursor_execute", _before_cursor_execute)
        event.listen(Engine, "after_cursor_execute", _after_cursor_execute)
        event.listen(Engine, "handle_error", _handle_error)


def _before_cursor_execute(
    connection: Any, _: Any, statement: str, __: Any, ___: Any, ____: bool
) -> None:
    tracer = _request_tracer.get()
    if tracer is None:
        return
    operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
    span = tracer.start_span(
        operation,
        kind=SpanKind.CLIENT,
        attributes={
            "db.system.name": connection.dialect.name,
            "db.operation.name": operation,
            # Bound parameters stay out: they may hold emails or password hashes.
            "db.query.text": statement,
        },
    )
    connection.info.setdefault(_SPANS_KEY, []).append(span)


def _after_cursor_execute(connection: Any, *_: Any) -> None:
    spans = connection.info.get(_SPANS_KEY)
    if spans:
        spans.pop().end()


def _handle_error(context: Any) -> None:
    connection = context.connection
    spans = connection.info.get(_SPANS_KEY) if connection is not None else None
    if spans:
        span = spans.pop()
        span.set_status(Status(StatusCode.ERROR, type(context.original_exception).__name__))
        span.end()
