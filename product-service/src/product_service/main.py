"""create_app: the composition root of product-service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from product_service.config import SERVICE_NAME, Settings
from product_service.consumers import EventWiring, event_runtime
from product_service.db import MIGRATIONS_DIR, VERSION_TABLE, create_sessionmaker
from product_service.models import OUTBOX_TABLE
from product_service.replays import answer_of_first_attempt
from product_service.router import router
from product_service.stock.router import ORDER_SERVICE
from product_service.stock.router import router as stock_router
from shop_common.callers import credential_verifier
from shop_common.database import create_engine, engine_options, schema_state
from shop_common.health import health_router
from shop_common.retried_writes import replay_from_outbox
from shop_common.service_app import install_service_defaults

if TYPE_CHECKING:
    from shop_common.tracing import Tracing


def create_app(
    settings: Settings | None = None,
    *,
    events: EventWiring | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """The app; `events` replaces the streams' names (tests on a shared NATS server),
    `tracing` the OTLP exporter OTEL_EXPORTER_OTLP_ENDPOINT would make (tests)."""
    settings = settings or Settings()
    wiring = events or EventWiring()
    if tracing is None and settings.otel_exporter_otlp_endpoint:
        # Made here rather than by install_service_defaults: the events' spans
        # (relay, consumer) join the same traces as the requests'.
        from shop_common.tracing import Tracing

        tracing = Tracing.to_otlp(SERVICE_NAME, settings.otel_exporter_otlp_endpoint)
    # order-service's key too: it calls /stock/reservations (and only that).
    verifier = credential_verifier(settings, audience=SERVICE_NAME, callers=(ORDER_SERVICE,))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, **engine_options(settings))
        app.state.engine = engine
        # The same pool, its connections outside any transaction (single-SELECT routes).
        app.state.read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        # A write and its event as one statement needs PostgreSQL's data-modifying WITH.
        postgres = engine.dialect.name == "postgresql"
        app.state.one_statement_engine = app.state.read_engine if postgres else None
        sessionmaker = create_sessionmaker(engine)
        app.state.sessionmaker = sessionmaker
        async with AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            if settings.nats_url:
                # Starts at once and connects in the background: /ready never waits for
                # NATS, and events wait in the outbox while it is away.
                runtime = event_runtime(
                    nats_url=settings.nats_url,
                    engine=engine,
                    sessionmaker=sessionmaker,
                    wiring=wiring,
                    tracing=tracing,
                )
                app.state.events = runtime
                await stack.enter_async_context(runtime)
            yield

    app = FastAPI(
        title="product-service",
        description="The product catalogue, reached through the api-gateway only.",
        version="1.0.0",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    install_service_defaults(
        app,
        settings=settings,
        verifier=verifier,
        tracing=tracing,
        replay=replay_from_outbox(lambda: app.state.engine, OUTBOX_TABLE, answer_of_first_attempt),
    )

    async def check_ready() -> dict[str, str]:
        state = await schema_state(app.state.engine, MIGRATIONS_DIR, VERSION_TABLE)
        return {"database": state}

    app.include_router(health_router(check_ready))
    app.include_router(router)
    app.include_router(stock_router)
    return app
