"""create_app: the composition root of product-service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.routing import Match

from product_service.config import SERVICE_NAME, Settings
from product_service.db import MIGRATIONS_DIR, VERSION_TABLE, create_sessionmaker
from product_service.fast_read import ProductFastRead
from product_service.router import router
from shop_common.callers import credential_verifier
from shop_common.database import create_engine, engine_options, schema_state
from shop_common.health import health_router
from shop_common.problems import problem_response
from shop_common.service_app import install_service_defaults

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    verifier = credential_verifier(settings, audience=SERVICE_NAME)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, **engine_options(settings))
        app.state.engine = engine
        # The same pool, its connections outside any transaction (single-SELECT routes).
        app.state.read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        app.state.sessionmaker = create_sessionmaker(engine)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="product-service",
        description="The product catalogue, reached through the api-gateway only.",
        version="1.0.0",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    if not settings.otel_exporter_otlp_endpoint:
        # Innermost of the middlewares: behind the credential check, inside the access
        # log and metrics. Traced processes take the route, whose SQL has spans.
        app.add_middleware(ProductFastRead, fastapi_app=app)
    install_service_defaults(app, settings=settings, verifier=verifier)

    async def check_ready() -> dict[str, str]:
        state = await schema_state(app.state.engine, MIGRATIONS_DIR, VERSION_TABLE)
        return {"database": state}

    app.include_router(health_router(check_ready))
    app.include_router(router)
    app.add_exception_handler(405, _method_not_allowed)
    return app


async def _method_not_allowed(request: Request, _: Exception) -> Response:
    """405 whose Allow lists every method the path has.

    Starlette names only the methods of the first route that matches the path, and
    /products has two routes (GET and POST); so ask the router about each method.
    """
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
    return problem_response(405, headers={"Allow": ", ".join(allowed)})
