"""GET /products/{id} without FastAPI's per-request machinery: the shop's hottest request.

The common case only: a canonical UUID that names a product, answered with one driver
round trip and a pydantic-serialised body. Everything else (not a UUID, no such product,
a database error) goes on to the FastAPI route, which stays the reference for the
endpoint's behaviour and its documentation; so does every request while tracing is on,
whose SQL spans come from SQLAlchemy's events. docs/decisions/product-service-read-path.md
has the measurements behind it.

It sits inside the service defaults (request id, access log, metrics, gateway guard),
so this path is logged, counted and refused without a credential like any other.
"""

from __future__ import annotations

import logging
import re
import uuid

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from product_service.repository import read_product
from product_service.router import router as product_routes
from product_service.schemas import ProductPublic
from shop_common.etags import entity_tag as product_etag
from shop_common.etags import parse_condition

logger = logging.getLogger(__name__)

_PATH = re.compile(
    r"/products/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)
_IF_NONE_MATCH = b"if-none-match"
_JSON = (b"content-type", b"application/json")


class ProductFastRead:
    """ASGI middleware answering GET /products/{id} when it can, else passing it on."""

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI) -> None:
        self.app = app
        self._fastapi_app = fastapi_app
        # The route's own object: metrics and the access log label requests by its path.
        self._route = _get_product_route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        match = _PATH.fullmatch(scope["path"])
        if match is None or not await self._answer(scope, send, uuid.UUID(match.group(1))):
            await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send, product_id: uuid.UUID) -> bool:
        """True once the response is sent; False leaves the request to the route."""
        engine = self._fastapi_app.state.engine
        try:
            async with engine.connect() as connection:
                try:
                    row = await read_product(connection, product_id)
                except Exception:
                    # SQLAlchemy did not see the driver fail: the pool must not reuse it.
                    await connection.invalidate()
                    raise
        except Exception as exc:  # noqa: BLE001 - the route answers it (503, or 500 logged)
            logger.debug("fast read left to the route: %s", type(exc).__name__)
            return False
        if row is None:
            return False  # the route's 404
        body = ProductPublic.of_row(row).model_dump_json().encode()
        etag = product_etag(row["id"], row["version"]).encode("ascii")
        scope["route"] = self._route
        if_none_match = [v.decode("latin-1") for k, v in scope["headers"] if k == _IF_NONE_MATCH]
        condition = parse_condition(if_none_match)
        if condition is not None and condition.matches_weakly(etag.decode("ascii")):
            await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", etag)]})
            await send({"type": "http.response.body", "body": b""})
        else:
            headers = [_JSON, (b"content-length", b"%d" % len(body)), (b"etag", etag)]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        return True


def _get_product_route() -> BaseRoute:
    for route in product_routes.routes:
        if isinstance(route, APIRoute) and route.operation_id == "getProduct":
            return route
    raise LookupError("product-service has no getProduct route")
