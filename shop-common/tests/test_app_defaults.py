"""The service defaults on a tiny app: guard, body rules, problems, request ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from shop_common.credential import CredentialVerifier
from shop_common.json_body import JsonRoute
from shop_common.keys import load_public_key
from shop_common.models import LongText, StrictModel, TrimmedText
from shop_common.service_app import install_service_defaults
from shop_common.settings import ServiceSettings
from shop_common.testing import GatewayKeys, write_gateway_keys

pytestmark = pytest.mark.anyio
JSON = {"content-type": "application/json"}


class Thing(StrictModel):
    name: TrimmedText
    price: Decimal
    note: LongText = ""


@pytest.fixture
def keys(tmp_path: Path) -> GatewayKeys:
    return write_gateway_keys(tmp_path)


@pytest.fixture
async def client(tmp_path: Path, keys: GatewayKeys) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(data_dir=tmp_path, max_body_bytes=2048)
    app = FastAPI(redirect_slashes=False)
    router = APIRouter(route_class=JsonRoute)

    @router.post("/things")
    async def create(thing: Thing, request: Request) -> dict[str, str]:
        return {
            "name": thing.name,
            "price": str(thing.price),
            "caller": request.state.caller.user_id,
        }

    app.include_router(router)
    verifier = CredentialVerifier(load_public_key(settings.gateway_public_key_path), "svc")
    install_service_defaults(app, settings=settings, verifier=verifier)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://t", auth=keys.auth()
    ) as c:
        yield c


def _headers(keys: GatewayKeys, **extra: str) -> dict[str, str]:
    return {**keys.headers("svc", user_id="u-1", role="USER"), **extra}


async def test_a_request_without_credential_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/things", json={"name": "a", "price": 1})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_health_needs_no_credential_but_metrics_exists(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 200


async def test_fractions_are_parsed_exactly(client: httpx.AsyncClient, keys: GatewayKeys) -> None:
    response = await client.post(
        "/things", headers=_headers(keys, **JSON), content=b'{"name":" a ","price":0.1}'
    )
    assert response.status_code == 200
    assert response.json() == {"name": "a", "price": "0.1", "caller": "u-1"}


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        pytest.param("text/plain", b'{"name":"a","price":1}', 415, id="not-json"),
        pytest.param("application/json", b'{"name":', 400, id="malformed"),
        pytest.param("application/json", b'{"name":"a","price":NaN}', 400, id="nan"),
        pytest.param("application/json", b"[" * 100_000, 413, id="too-large"),
        pytest.param("application/json", b'{"name":"a","price":1,"x":1}', 422, id="unknown"),
        pytest.param("application/json", b'{"name":"a\\u0007","price":1}', 422, id="control"),
        pytest.param("application/json", b'{"name":"a","price":1,"note":"\\u0000"}', 422, id="nul"),
    ],
)
async def test_body_errors_follow_the_contract(
    client: httpx.AsyncClient, keys: GatewayKeys, content_type: str, body: bytes, status: int
) -> None:
    response = await client.post(
        "/things", headers=_headers(keys, **{"content-type": content_type}), content=body
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


async def test_validation_errors_name_the_field(
    client: httpx.AsyncClient, keys: GatewayKeys
) -> None:
    response = await client.post(
        "/things", headers=_headers(keys, **JSON), content=b'{"name":"a","price":"x"}'
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["price"]


async def test_long_text_keeps_tabs_and_newlines(
    client: httpx.AsyncClient, keys: GatewayKeys
) -> None:
    body = b'{"name":"a","price":1,"note":"line\\n\\tline\\r\\n"}'
    response = await client.post("/things", headers=_headers(keys, **JSON), content=body)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        pytest.param("abc-123", True, id="sane"),
        pytest.param("x" * 129, False, id="too-long"),
        pytest.param("has space", False, id="space"),
    ],
)
async def test_request_id_is_echoed_only_when_sane(
    client: httpx.AsyncClient, keys: GatewayKeys, sent: str, kept: bool
) -> None:
    response = await client.post(
        "/things", headers=_headers(keys, **JSON, **{"x-request-id": sent}), json={}
    )
    assert (response.headers["x-request-id"] == sent) is kept


async def test_unknown_path_and_trailing_slash_are_404_and_wrong_method_405(
    client: httpx.AsyncClient, keys: GatewayKeys
) -> None:
    assert (await client.get("/nothing", headers=_headers(keys))).status_code == 404
    assert (
        await client.post("/things/", headers=_headers(keys, **JSON), json={})
    ).status_code == 404
    wrong = await client.get("/things", headers=_headers(keys))
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
