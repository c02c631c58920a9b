from __future__ import annotations

import uuid
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from shop_common.credential import Caller
from shop_common.dependencies import (
    AuthenticationRequired,
    app_state_dependency,
    signed_in_user_id,
)

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


@pytest.mark.parametrize(
    ("user_id", "detail"),
    [
        pytest.param(None, "Sign in first.", id="nobody-signed-in"),
        pytest.param("not-a-uuid", "The caller is not a known user.", id="malformed-id"),
    ],
)
def test_a_route_for_users_refuses_a_request_without_one(user_id: str | None, detail: str) -> None:
    with pytest.raises(AuthenticationRequired) as refused:
        signed_in_user_id(Caller(user_id, None), sign_in="Sign in first.")
    assert (refused.value.status, refused.value.detail) == (401, detail)
    assert refused.value.headers == {"WWW-Authenticate": "Bearer"}


def test_the_signed_in_user_id_is_a_uuid() -> None:
    user_id = uuid.uuid4()
    assert signed_in_user_id(Caller(str(user_id), "USER"), sign_in="-") == user_id
