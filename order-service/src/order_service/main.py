"""create_app: the composition root of order-service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError

from order_service.config import PRODUCT_SERVICE, SERVICE_NAME, Settings
from order_service.db import MIGRATIONS_DIR, VERSION_TABLE, create_sessionmaker
from order_service.dependencies import IDEMPOTENCY_KEY_HEADER
from order_service.events import ORDERS_STREAM
from order_service.models import OUTBOX_TABLE
from order_service.router import router
from order_service.stock import StockClient
from order_service.sweeper import OrderSweeper
from shop_common.callers import credential_verifier
from shop_common.database import create_engine, engine_options, schema_state
from shop_common.events import EventRuntime
from shop_common.health import health_router
from shop_common.problems import problem_response, validation_errors
from shop_common.service_app import install_service_defaults
from shop_common.service_client import ServiceClient

if TYPE_CHECKING:
    from shop_common.tracing import Tracing


def create_app(settings: Settings | None = None, *, tracing: Tracing | None = None) -> FastAPI:
    """The app; `tracing` replaces the OTLP exporter OTEL_EXPORTER_OTLP_ENDPOINT would
    make (tests)."""
    settings = settings or Settings()
    if tracing is None and settings.otel_exporter_otlp_endpoint:
        # Made here rather than by install_service_defaults: the relay's spans join the
        # requests' traces (one trace from POST /orders to the consumers).
        from shop_common.tracing import Tracing

        tracing = Tracing.to_otlp(SERVICE_NAME, settings.otel_exporter_otlp_endpoint)
    verifier = credential_verifier(settings, audience=SERVICE_NAME)
    # Read now, so a missing key stops the start with a clear message.
    product_client = ServiceClient.from_settings(
        settings,
        minter=SERVICE_NAME,
        target=PRODUCT_SERVICE,
        base_url=settings.product_url,
        timeout=settings.stock_timeout_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, **engine_options(settings))
        sessionmaker = create_sessionmaker(engine)
        stock = StockClient(product_client)
        app.state.engine = engine
        app.state.sessionmaker = sessionmaker
        app.state.stock = stock
        sweeper = OrderSweeper(sessionmaker, stock, settings)
        app.state.sweeper = sweeper
        async with AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            stack.push_async_callback(stock.close)
            if settings.nats_url:
                events = EventRuntime(
                    nats_url=settings.nats_url,
                    source=SERVICE_NAME,
                    engine=engine,
                    sessionmaker=sessionmaker,
                    streams=[ORDERS_STREAM],
                    outbox_table=OUTBOX_TABLE,
                    tracing=tracing,
                )
                app.state.events = events
                await stack.enter_async_context(events)
            task = asyncio.create_task(sweeper.run(), name="order-sweeper")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="order-service",
        description="Orders: checkout, payment, shipment and expiry, reached through the "
        "api-gateway only.",
        version="1.0.0",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    install_service_defaults(app, settings=settings, verifier=verifier, tracing=tracing)

    async def check_ready() -> dict[str, str]:
        state = await schema_state(app.state.engine, MIGRATIONS_DIR, VERSION_TABLE)
        return {"database": state}

    app.include_router(health_router(check_ready))
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    return app


async def _invalid_request(_: Request, exc: Exception) -> Response:
    """422, except a missing or malformed Idempotency-Key: 400, which the contract puts
    before any body error (FastAPI reports both in one exception)."""
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    if any(error["field"] == f"header.{IDEMPOTENCY_KEY_HEADER}" for error in errors):
        return problem_response(
            400,
            detail="The Idempotency-Key header is required: 1 to 255 visible ASCII characters.",
        )
    return problem_response(422, detail="The request is not valid.", errors=errors)
