"""JSON request bodies: size limit (413), content type (415), syntax (400), exact decimals.

The guard runs before the app reads a body, so the statuses come in the contract's
order (413, 415, 400, then 422 from validation). It parses once, numbers with a
fraction becoming Decimal so prices never pass through a float, and JsonRoute hands
that parse to FastAPI instead of letting it parse again with floats. loads_exact is the
one JSON reader of request bodies: the gateway keys its per-email limits with it too
(shop_common.emails.body_email, numbers left unconverted), so both read the same document
from the same bytes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop_common.problems import PROBLEM_CONTENT_TYPE, problem_body
from shop_common.request_context import header_value

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_PARSED_KEY = "json_body"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Beyond this magnitude a number is beyond every field of every service (prices stop at
# 10**9), and converting it costs: pydantic's lax int reads a Decimal through
# as_integer_ratio (11 s for a 300,000-digit integer; 1e999999999 never ends) and int()
# refuses more digits than sys.get_int_max_str_digits(). Such numbers are read as this
# bound, with their sign: still out of every range (422), never 400, 500 or a hang.
_SATURATED_DIGITS = 4300
_SATURATED = Decimal(f"1E+{_SATURATED_DIGITS}")


def _exact_decimal(text: str) -> Decimal:
    try:
        number = Decimal(text)
    except ArithmeticError:
        # Valid JSON whose exponent is beyond any Decimal (1e99999999999999999999):
        # NaN, which every field refuses, so validation answers 422, never 500.
        return Decimal("NaN")
    if number and number.adjusted() >= _SATURATED_DIGITS:  # 0e999999999 is still 0
        return -_SATURATED if number.is_signed() else _SATURATED
    return number


def _exact_int(text: str) -> int | Decimal:
    # int() refuses more digits than sys.get_int_max_str_digits() (4300 by default, a
    # guard against its quadratic conversion), which made a valid JSON integer "not
    # valid JSON" (400). Past the bound it is read as the saturated Decimal instead.
    limit = sys.get_int_max_str_digits() or len(text)
    if len(text.lstrip("-")) <= min(limit, _SATURATED_DIGITS):
        return int(text)
    return -_SATURATED if text.startswith("-") else _SATURATED


def loads_exact(raw: bytes) -> Any:
    """A request body as the services read it: json.loads on the bytes.

    The encoding is detected as json.loads does it: UTF-8 (with or without a BOM),
    UTF-16 or UTF-32 (either byte order). Fractions become Decimal, integers int;
    numbers of 10**4300 or more in magnitude become ±1E+4300 (beyond every field's
    range); NaN and Infinity are refused. ValueError (or
    RecursionError, for very deep nesting) when the body is not JSON.
    """
    return json.loads(
        raw,
        parse_float=_exact_decimal,
        parse_int=_exact_int,
        parse_constant=_reject_constant,
    )


def loads_numbers_as_bytes(raw: bytes) -> Any:
    """loads_exact's document with each number left unconverted, as the bytes of its
    JSON text (never a str, so a number is never taken for a string).

    The same decoding and grammar, so the same bodies are refused and every string is
    the same (loads_exact never fails on a number: exponents beyond Decimal become NaN,
    huge magnitudes ±1E+4300). For readers of strings only, such as the gateway's per-email key:
    making Decimals costs ~0.5 µs a number, 0.15-0.25 s for a 1 MiB body of them, 4x
    this reader's time.
    """
    return json.loads(
        raw, parse_float=str.encode, parse_int=str.encode, parse_constant=_reject_constant
    )


def is_json_content_type(value: bytes | None) -> bool:
    if value is None:
        return False
    media_type = value.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


class JsonBodyGuard:
    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt_paths: frozenset[str]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_paths = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in BODY_METHODS
            or scope["path"] in self.exempt_paths
        ):
            await self.app(scope, receive, send)
            return
        length = header_value(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _send_problem(send, 413, "The request body is larger than allowed.")
            return
        content_type = header_value(scope, b"content-type")
        if content_type is None and _declares_no_body(scope, length):
            # An action without a body (POST /orders/{id}/cancel): nothing to check; a
            # route that needs a body answers 422 for its absence.
            await self.app(scope, receive, send)
            return
        if not is_json_content_type(content_type):
            await _send_problem(send, 415, "The request body must be application/json.")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _send_problem(send, 413, "The request body is larger than allowed.")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        if raw:
            try:
                scope.setdefault("state", {})[_PARSED_KEY] = loads_exact(raw)
            except (ValueError, RecursionError):
                await _send_problem(send, 400, "The request body is not valid JSON.")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _declares_no_body(scope: Scope, length: bytes | None) -> bool:
    if header_value(scope, b"transfer-encoding") is not None:
        return False
    return length is None or int(length) == 0


async def _send_problem(send: Send, status: int, detail: str) -> None:
    body = problem_body(status, detail=detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _NoBody:
    """No body at all, which FastAPI tells apart from a JSON `null`."""


NO_BODY = _NoBody()


async def request_json(request: Request) -> Any:
    """The body as JsonBodyGuard parsed it (exact numbers), or NO_BODY when there is none:
    for a route that validates its body itself (shop_common.validation.validate_body)."""
    state = request.scope.get("state", {})
    if _PARSED_KEY in state:
        return state[_PARSED_KEY]
    raw = await request.body()
    return loads_exact(raw) if raw else NO_BODY


class _ParsedJsonRequest(Request):
    async def json(self) -> Any:
        state = self.scope.get("state", {})
        if _PARSED_KEY in state:
            return state[_PARSED_KEY]
        return loads_exact(await self.body())


class JsonRoute(APIRoute):
    """Routes that take the guard's exact parse instead of a float-based one."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parsed_json_handler(request: Request) -> Response:
            return await handler(_ParsedJsonRequest(request.scope, request.receive))

        return parsed_json_handler
