"""parse_list_query answers every query string as FastAPI solving list_request would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from product_service.dependencies import ListRequestDep, parse_list_query
from product_service.service import ListRequest
from shop_common.problems import install_problem_handlers

pytestmark = pytest.mark.anyio


def _described(parameters: ListRequest) -> dict[str, str]:
    return {"parsed": repr(parameters)}


def reference_and_lean_app() -> FastAPI:
    """The list parameters the usual FastAPI way (`/reference`) and parsed by the lean
    route's parser (`/lean`), with the service's problem handlers."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/reference")
    async def reference(parameters: ListRequestDep) -> dict[str, str]:
        return _described(parameters)

    @app.get("/lean")
    async def lean(request: Request) -> dict[str, str]:
        return _described(await parse_list_query(request.query_params))

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=reference_and_lean_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def _comparable(response: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    body = response.json()
    body.pop("request_id", None)
    return response.status_code, response.headers["content-type"], body


OWNER = str(uuid.uuid4())


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("", id="no-parameters"),
        pytest.param("limit=1&sort=price", id="limit-and-sort"),
        pytest.param(
            f"limit=100&q=Lamp&min_price=1.5&max_price=1e2&owner_id={OWNER}&sort=-name",
            id="every-parameter",
        ),
        pytest.param("limit=5&limit=7", id="repeated-last-wins"),
        pytest.param("limit=5&limit=abc", id="repeated-last-bad"),
        pytest.param("colour=red&page=3", id="unknown-ignored"),
        pytest.param("q=", id="q-empty"),
        pytest.param("limit=", id="limit-empty"),
        pytest.param("limit=0", id="limit-zero"),
        pytest.param("limit=101", id="limit-above-100"),
        pytest.param("limit=%2B7", id="limit-with-sign"),
        pytest.param("limit=7.0", id="limit-with-fraction"),
        pytest.param("limit=%207%20", id="limit-with-spaces"),
        pytest.param("sort=Price", id="sort-case"),
        pytest.param("sort=", id="sort-empty"),
        pytest.param("q=" + "x" * 201, id="q-too-long"),
        pytest.param("q=a%00b", id="q-nul"),
        pytest.param("q=%ff", id="q-invalid-utf8"),
        pytest.param("cursor=" + "A" * 4097, id="cursor-too-long"),
        pytest.param("cursor=garbage", id="cursor-garbage"),
        pytest.param("owner_id=nope", id="owner-malformed"),
        pytest.param("owner_id=" + OWNER.replace("-", ""), id="owner-without-dashes"),
        pytest.param("owner_id=%00", id="owner-nul"),
        pytest.param("min_price=5&max_price=4.99", id="min-above-max"),
        pytest.param("min_price=ten&max_price=-1", id="both-prices-bad"),
        pytest.param(
            "limit=abc&q=" + "x" * 201 + "&owner_id=1&sort=stock&min_price=ten",
            id="several-bad-types-at-once",
        ),
    ],
)
async def test_the_lean_parser_answers_as_fastapi_solving_list_request(
    client: httpx.AsyncClient, query: str
) -> None:
    reference = await client.get("/reference?" + query)
    lean = await client.get("/lean?" + query)
    assert _comparable(lean) == _comparable(reference)
