"""validate_body answers exactly as FastAPI does for a body parameter of the same model."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from shop_common.json_body import NO_BODY
from shop_common.validation import validate_body

pytestmark = pytest.mark.anyio


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    price: int = Field(alias="cost", ge=0)
    tags: list[str] = []


def fastapi_errors() -> FastAPI:
    app = FastAPI()

    @app.exception_handler(RequestValidationError)
    async def errors(_: Any, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse([[e["type"], list(e["loc"]), e["msg"]] for e in exc.errors()], 422)

    @app.post("/items")
    async def create(item: Item) -> None:
        del item

    return app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="no-body"),
        pytest.param(b"null", id="null"),
        pytest.param(b"[]", id="list"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b'{"name": "", "cost": -1}', id="bounds"),
        pytest.param(b'{"name": 5, "cost": "x", "tags": [1]}', id="types"),
        pytest.param(b'{"name": "a", "cost": 1, "extra": true}', id="extra"),
        pytest.param(b'{"name": "a", "price": 1}', id="field-name-not-alias"),
    ],
)
async def test_the_errors_are_fastapi_s(body: bytes) -> None:
    transport = httpx.ASGITransport(app=fastapi_errors())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        headers = {"content-type": "application/json"} if body else {}
        expected = (await client.post("/items", content=body, headers=headers)).json()
    data = json.loads(body) if body else NO_BODY
    with pytest.raises(RequestValidationError) as raised:
        validate_body(Item, data)
    assert [[e["type"], list(e["loc"]), e["msg"]] for e in raised.value.errors()] == expected


async def test_a_valid_body_is_the_model() -> None:
    item = validate_body(Item, {"name": "a", "cost": 3})
    assert (item.name, item.price, item.tags) == ("a", 3, [])
