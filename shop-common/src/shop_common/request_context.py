"""Request ids and the one access-log line per request, as plain ASGI middleware."""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop_common.logging import request_id_var, user_id_var

_SANE_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")
access_log = logging.getLogger("access")
# The headers of the request being handled (the scope's own list, not a copy): a call
# to another service passes its traceparent on (shop_common.service_client).
request_headers_var: ContextVar[list[tuple[bytes, bytes]] | None] = ContextVar(
    "request_headers", default=None
)
# The credential id (`jti`) of the request being handled: each event it records carries
# it, so a write the gateway sends again is recognised (shop_common.retried_writes).
request_key_var: ContextVar[str | None] = ContextVar("request_key", default=None)


def sane_request_id(value: bytes | None) -> str:
    """The client's id when it is 1-128 visible ASCII characters, else a new one."""
    if value is not None and _SANE_REQUEST_ID.fullmatch(value):
        return value.decode("ascii")
    return uuid.uuid4().hex


def header_value(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class RequestContextMiddleware:
    """Sets the request id (header in, header out, every log line) and logs the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = sane_request_id(header_value(scope, b"x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        user_token = user_id_var.set(None)
        headers_token = request_headers_var.set(scope["headers"])
        started = time.perf_counter()
        status = 500
        encoded_id = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", encoded_id))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _log_request(scope, status, started)
            request_headers_var.reset(headers_token)
            user_id_var.reset(user_token)
            request_id_var.reset(token)


def _log_request(scope: Scope, status: int, started: float) -> None:
    route: Any = scope.get("route")
    extra = {
        "method": scope["method"],
        "path": scope["path"],
        "route": getattr(route, "path", None) or scope.get("route_template"),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    access_log.info("%s %s %s", scope["method"], scope["path"], status, extra=extra)
