from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from shop_common.dependencies import app_state_dependency

pytestmark = pytest.mark.anyio

GreetingDep = Annotated[str, Depends(app_state_dependency("greeting"))]


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def greet(greeting: GreetingDep) -> dict[str, str]:
        return {"greeting": greeting}

    return app


async def test_the_dependency_reads_app_state_on_every_request() -> None:
    app = _app()
    app.state.greeting = "hello"
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = (await client.get("/")).json()
        # A test replacing the attribute (the auth clock) is seen by the next request.
        app.state.greeting = "bye"
        second = (await client.get("/")).json()
    assert (first, second) == ({"greeting": "hello"}, {"greeting": "bye"})


async def test_an_attribute_the_lifespan_did_not_set_is_an_error() -> None:
    transport = httpx.ASGITransport(_app(), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with pytest.raises(AttributeError):
            await client.get("/")
