"""RFC 9457 problem details, built in one place for every service.

Problem (Exception)          -> application/problem+json with its status
  each service subclasses it in its exceptions.py
Handlers installed by install_problem_handlers():
  Problem                    -> as declared
  HTTPException (Starlette)  -> same status, its headers kept (405 keeps Allow)
  RequestValidationError     -> 422 with "errors": [{"field", "message"}]
  any other exception        -> 500 with no internals, and Connection: close
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from shop_common.logging import request_id_var

PROBLEM_CONTENT_TYPE = "application/problem+json"
logger = logging.getLogger(__name__)


class Problem(Exception):
    """An error a client can act on. Subclasses set status, title and type."""

    status: int = 500
    title: str | None = None
    type: str = "about:blank"
    headers: Mapping[str, str] | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title or "")
        self.detail = detail
        self.errors = errors
        if headers is not None:
            self.headers = headers


def problem_body(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_: str = "about:blank",
    errors: Sequence[Mapping[str, str]] | None = None,
    request_id: str | None = None,
) -> bytes:
    phrase = _phrase(status)
    body: dict[str, Any] = {
        "type": type_,
        "title": title or phrase,
        "status": status,
        "detail": detail or title or phrase,
        "request_id": request_id if request_id is not None else request_id_var.get(),
    }
    if errors is not None:
        body["errors"] = list(errors)
    return orjson.dumps(body)


def problem_response(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_: str = "about:blank",
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> Response:
    return Response(
        problem_body(
            status, title=title, detail=detail, type_=type_, errors=errors, request_id=request_id
        ),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_CONTENT_TYPE,
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def validation_errors(raw: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic's error list as [{"field": "price" | "query.limit", "message"}]."""
    errors = []
    for error in raw:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] == "body":
            loc = loc[1:]
        errors.append({"field": ".".join(loc) or "body", "message": str(error.get("msg", ""))})
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(
            exc.status,
            title=exc.title,
            detail=exc.detail,
            type_=exc.type,
            errors=exc.errors,
            headers=exc.headers,
        )

    async def on_http_exception(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail: str | None = exc.detail if isinstance(exc.detail, str) else None
        if detail == _phrase(exc.status_code):
            detail = None
        return problem_response(exc.status_code, detail=detail, headers=exc.headers)

    async def on_validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(
            422,
            detail="The request is not valid.",
            errors=validation_errors(exc.errors()),
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Starlette's outermost middleware runs this outside the request's context (its
        # id is on the scope) and re-raises afterwards, so the server closes the
        # connection: saying so keeps a client from reusing it (the gateway would send
        # its next request, maybe a write, on a dead connection: a 502).
        logger.error("unhandled error", exc_info=exc)
        return problem_response(
            500,
            detail="An unexpected error occurred.",
            headers={"Connection": "close"},
            request_id=request.scope.get("state", {}).get("request_id"),
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)


def problem_responses(
    *statuses: int, why: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status described as problem+json in OpenAPI.

    `why` adds statuses with the reason this route answers them (the others get the
    status phrase).
    """
    reasons = why or {}
    return {
        status: {
            "description": reasons.get(status, _phrase(status)),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in dict.fromkeys((*statuses, *reasons))
    }
