"""Two tiny services for test_service_client.py, each run as its own process.

    python two_services.py receiver FD DATA_DIR
    python two_services.py caller FD DATA_DIR RECEIVER_URL

The receiver says what its credential told it; "/stock" accepts order-service only.
The caller (signing as order-service) forwards a gateway request to the receiver with
shop_common.service_client, as order-service will call product-service.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

from shop_common.callers import accepts_callers, credential_verifier
from shop_common.credential import Caller
from shop_common.service_app import install_service_defaults
from shop_common.service_client import ServiceCallError, ServiceClient
from shop_common.settings import ServiceSettings

ORDER = "order-service"


def _seen(request: Request, caller: Caller) -> dict[str, Any]:
    return {
        "issuer": caller.issuer,
        "user_id": caller.user_id,
        "role": caller.role,
        "request_id": request.headers.get("x-request-id"),
        "traceparent": request.headers.get("traceparent"),
        "method": request.method,
        "query": request.url.query,
    }


def receiver(settings: ServiceSettings) -> FastAPI:
    app = FastAPI(redirect_slashes=False)

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        return _seen(request, request.state.caller)

    @app.api_route("/stock/{sku}", methods=["GET", "PATCH"], dependencies=[accepts_callers(ORDER)])
    async def stock(sku: str, request: Request) -> dict[str, Any]:
        return {"sku": sku, **_seen(request, request.state.caller)}

    @app.get("/deadline", dependencies=[accepts_callers(ORDER)])
    async def deadline(request: Request) -> dict[str, Any]:
        return {"deadline": request.state.caller.deadline}

    @app.post("/stock", dependencies=[accepts_callers(ORDER)])
    async def reserve(request: Request) -> dict[str, Any]:
        return {"body": await request.json(), **_seen(request, request.state.caller)}

    verifier = credential_verifier(settings, audience="receiver", callers=[ORDER])
    install_service_defaults(app, settings=settings, verifier=verifier)
    return app


def caller(settings: ServiceSettings, receiver_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = ServiceClient.from_settings(
            settings, minter=ORDER, target="receiver", base_url=receiver_url, timeout=10
        )
        app.state.client = client
        try:
            yield
        finally:
            await client.close()

    app = FastAPI(redirect_slashes=False, lifespan=lifespan)

    @app.post("/orders")
    async def order(request: Request) -> dict[str, Any]:
        client: ServiceClient = request.app.state.client
        try:
            response = await client.post(
                "/stock", json=await request.json(), caller=request.state.caller
            )
        except ServiceCallError as exc:
            return {"error": type(exc).__name__}
        return {"status": response.status, "seen": response.json()}

    verifier = credential_verifier(settings, audience="caller")
    install_service_defaults(app, settings=settings, verifier=verifier)
    return app


def main() -> None:
    role, fd, data_dir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    settings = ServiceSettings(data_dir=data_dir)
    app = receiver(settings) if role == "receiver" else caller(settings, sys.argv[4])
    uvicorn.run(app, fd=fd, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
