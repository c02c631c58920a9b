"""A write the gateway sends again after its instance died: applied once, answered as the
first time (shop_common.retried_writes).

Two app instances on one database stand for two replicas: each has its own replay cache
of credential ids, as two processes do, so the very same credential reaches the second.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from product_service.config import SERVICE_NAME
from shop_common.credential import CREDENTIAL_HEADER, Caller, RequestBinding
from shop_common.retried_writes import RETRY_HEADER
from shop_common.testing import GatewayKeys, random_sku
from testsupport.product import Shop, running_shop

pytestmark = pytest.mark.anyio
RETRY = {RETRY_HEADER.decode(): "1"}


@pytest.fixture
async def other(
    database_url: str, gateway_keys: GatewayKeys, data_dir: Path
) -> AsyncIterator[Shop]:
    """A second replica on the same database."""
    async with running_shop(database_url, gateway_keys, data_dir) as running:
        yield running


def sent_by_gateway(keys: GatewayKeys, method: str, path: str, caller: Caller) -> dict[str, str]:
    """The headers of one request as the gateway forwards it: one credential, one jti."""
    request_id = uuid.uuid4().hex
    credential = keys.signer.mint(
        audience=SERVICE_NAME,
        caller=caller,
        request=RequestBinding(method, path, b"", request_id),
    )
    return {"x-request-id": request_id, CREDENTIAL_HEADER: credential}


async def send(
    shop: Shop, method: str, path: str, headers: dict[str, str], body: Any = None
) -> httpx.Response:
    # The shop's own client mints credentials itself: this one sends ours untouched.
    transport = httpx.ASGITransport(app=shop.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://product") as client:
        return await client.request(method, path, headers=headers, json=body)


async def rows_named(shop: Shop, name: str) -> int:
    async with shop.app.state.engine.connect() as connection:
        result = await connection.execute(
            text("SELECT count(*) FROM product WHERE name = :name"), {"name": name}
        )
        return int(result.scalar_one())


def owner() -> Caller:
    return Caller(user_id=str(uuid.uuid4()), role="USER")


async def test_a_create_that_committed_is_answered_again_not_applied_again(
    shop: Shop, other: Shop, gateway_keys: GatewayKeys
) -> None:
    name = f"retried {uuid.uuid4()}"
    body = {"name": name, "price": 19.99, "sku": random_sku()}
    headers = sent_by_gateway(gateway_keys, "POST", "/products", owner())
    first = await send(shop, "POST", "/products", headers, body)
    assert first.status_code == 201, first.text

    again = await send(other, "POST", "/products", {**headers, **RETRY}, body)

    assert again.status_code == 201, again.text
    assert again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["location"] == first.headers["location"]
    assert await rows_named(shop, name) == 1


async def test_a_create_whose_first_attempt_never_committed_is_applied_by_the_retry(
    other: Shop, gateway_keys: GatewayKeys
) -> None:
    name = f"lost {uuid.uuid4()}"
    headers = sent_by_gateway(gateway_keys, "POST", "/products", owner())
    body = {"name": name, "price": 3, "sku": random_sku()}

    response = await send(other, "POST", "/products", {**headers, **RETRY}, body)

    assert response.status_code == 201, response.text
    assert await rows_named(other, name) == 1


async def test_two_attempts_that_both_reach_the_database_commit_once(
    shop: Shop, other: Shop, gateway_keys: GatewayKeys
) -> None:
    """The first attempt was still running when the retry was sent (a broken connection,
    not a dead process): the retry finds nothing yet and applies; the late one cannot."""
    name = f"raced {uuid.uuid4()}"
    body = {"name": name, "price": 3}  # no SKU: only the event's request key can collide
    headers = sent_by_gateway(gateway_keys, "POST", "/products", owner())
    retry = await send(other, "POST", "/products", {**headers, **RETRY}, body)
    late = await send(shop, "POST", "/products", headers, body)

    assert retry.status_code == 201, retry.text
    assert late.status_code == 409, late.text  # refused, and nothing of it applied
    assert await rows_named(shop, name) == 1


async def test_an_update_and_a_delete_that_committed_are_answered_again(
    shop: Shop, other: Shop, gateway_keys: GatewayKeys
) -> None:
    caller = owner()
    created = await shop.create(shop.as_user(caller.user_id))
    path = f"/products/{created['id']}"
    headers = sent_by_gateway(gateway_keys, "PATCH", path, caller)
    first = await send(shop, "PATCH", path, headers, {"price": 7})
    assert first.status_code == 200, first.text

    again = await send(other, "PATCH", path, {**headers, **RETRY}, {"price": 7})

    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["etag"] == first.headers["etag"]
    assert again.json()["version"] == created["version"] + 1  # applied once

    admin = Caller(user_id=str(uuid.uuid4()), role="ADMIN")
    headers = sent_by_gateway(gateway_keys, "DELETE", path, admin)
    assert (await send(shop, "DELETE", path, headers)).status_code == 204
    again = await send(other, "DELETE", path, {**headers, **RETRY})
    assert again.status_code == 204  # not the 404 a second delete would get


async def test_the_retry_mark_on_a_fresh_request_changes_nothing(
    shop: Shop, gateway_keys: GatewayKeys
) -> None:
    """Only the gateway can send the mark; even so, on a request that was never applied
    it only costs a lookup."""
    caller = owner()
    created = await shop.create(shop.as_user(caller.user_id))
    path = f"/products/{created['id']}"
    headers = sent_by_gateway(gateway_keys, "PATCH", path, caller)
    response = await send(shop, "PATCH", path, {**headers, **RETRY}, {"stock": 4})
    assert response.status_code == 200, response.text
    assert response.json()["stock"] == 4
