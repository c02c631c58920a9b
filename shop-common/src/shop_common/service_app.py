"""Service defaults: what every service installs first (eShop's ServiceDefaults)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from starlette.routing import Match

from shop_common.credential import CredentialVerifier
from shop_common.gateway_guard import GatewayGuard
from shop_common.json_body import JsonBodyGuard
from shop_common.metrics import MetricsMiddleware, metrics_endpoint
from shop_common.problems import install_problem_handlers, problem_response
from shop_common.request_context import RequestContextMiddleware
from shop_common.retried_writes import ReplayLookup
from shop_common.settings import ServiceSettings
from shop_common.shutdown import CloseWhileDraining

if TYPE_CHECKING:
    from shop_common.tracing import Tracing

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def install_service_defaults(
    app: FastAPI,
    *,
    settings: ServiceSettings,
    verifier: CredentialVerifier,
    tracing: Tracing | None = None,
    replay: ReplayLookup | None = None,
) -> None:
    """Problem handlers (503 for a lost database), request ids, metrics, the guards;
    traces when OTEL_EXPORTER_OTLP_ENDPOINT is set (or `tracing` is given, in tests);
    `replay` answers writes the gateway sends again (shop_common.retried_writes)."""
    install_problem_handlers(app)
    app.add_exception_handler(405, method_not_allowed)
    # Imported here: the gateway imports this module (PROBLEM_SCHEMA) and has no database.
    from shop_common.abandon import AbandonGuard, refuse_abandoned_commits
    from shop_common.database import install_database_error_handler

    install_database_error_handler(app)
    refuse_abandoned_commits()
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    # Added innermost first: a request meets them in the reverse order.
    app.add_middleware(JsonBodyGuard, max_bytes=settings.max_body_bytes, exempt_paths=frozenset())
    app.add_middleware(GatewayGuard, verifier=verifier, routes=app.router.routes, replay=replay)
    app.add_middleware(MetricsMiddleware)
    _install_tracing(app, settings, tracing)
    app.add_middleware(RequestContextMiddleware)
    # Outside the guards that read the body, so it sees the server's own receive().
    app.add_middleware(AbandonGuard)
    app.add_middleware(CloseWhileDraining)
    _add_problem_schema(app)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


async def method_not_allowed(request: Request, _: Exception) -> Response:
    """405 whose Allow lists every method the path has: Starlette names only the methods of
    the first route matching the path, and a path often has several (GET and POST)."""
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
    return problem_response(405, headers={"Allow": ", ".join(allowed)})


def _install_tracing(app: FastAPI, settings: ServiceSettings, tracing: Tracing | None) -> None:
    if tracing is None and not settings.otel_exporter_otlp_endpoint:
        return  # opentelemetry is never imported
    from shop_common.tracing import Tracing, TracingMiddleware, trace_sql

    if tracing is None:
        assert settings.otel_exporter_otlp_endpoint is not None
        tracing = Tracing.to_otlp(app.title, settings.otel_exporter_otlp_endpoint)
    trace_sql()
    app.add_middleware(TracingMiddleware, tracing=tracing)


def _add_problem_schema(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                PROBLEM_SCHEMA
            )
        return app.openapi_schema or original()

    app.openapi = openapi  # type: ignore[method-assign]
