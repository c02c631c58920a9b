"""When several errors apply, the contract's order decides: 415, 400, 422, 404, 403, 412, 409."""

from __future__ import annotations

import uuid

import pytest

from testsupport.product import Shop

pytestmark = pytest.mark.anyio

STALE = '"00000000000000000000000000000000-1"'


async def test_a_non_owner_with_a_stale_if_match_gets_403_not_412(shop: Shop) -> None:
    product = await shop.create(shop.as_user())
    response = await shop.client.patch(
        f"/products/{product['id']}",
        json={"stock": 1},
        headers={**shop.as_user(), "if-match": STALE},
    )
    assert response.status_code == 403


async def test_a_missing_product_with_a_bad_body_gets_422_before_404(shop: Shop) -> None:
    for method in ("PUT", "PATCH"):
        response = await shop.client.request(
            method,
            f"/products/{uuid.uuid4()}",
            json={"price": "19.99"},
            headers=shop.as_admin(),
        )
        assert response.status_code == 422


async def test_a_malformed_id_with_a_bad_body_gets_422_before_404(shop: Shop) -> None:
    response = await shop.client.patch("/products/nope", json={}, headers=shop.as_admin())
    assert response.status_code == 422


async def test_a_missing_product_with_a_stale_if_match_gets_404_before_412(shop: Shop) -> None:
    response = await shop.client.patch(
        f"/products/{uuid.uuid4()}",
        json={"stock": 1},
        headers={**shop.as_admin(), "if-match": STALE},
    )
    assert response.status_code == 404


async def test_a_non_owner_with_a_used_sku_gets_403_before_409(shop: Shop) -> None:
    taken = await shop.create(shop.as_user())
    product = await shop.create(shop.as_user())
    response = await shop.client.patch(
        f"/products/{product['id']}", json={"sku": taken["sku"]}, headers=shop.as_user()
    )
    assert response.status_code == 403


async def test_a_stale_if_match_with_a_used_sku_gets_412_before_409(shop: Shop) -> None:
    owner = shop.as_user()
    taken = await shop.create(owner)
    product = await shop.create(owner)
    response = await shop.client.patch(
        f"/products/{product['id']}",
        json={"sku": taken["sku"]},
        headers={**owner, "if-match": STALE},
    )
    assert response.status_code == 412


async def test_a_bad_body_by_a_non_owner_gets_422_before_403(shop: Shop) -> None:
    product = await shop.create(shop.as_user())
    response = await shop.client.patch(
        f"/products/{product['id']}", json={"stock": -1}, headers=shop.as_user()
    )
    assert response.status_code == 422


async def test_malformed_json_gets_400_before_422_and_404(shop: Shop) -> None:
    response = await shop.client.patch(
        f"/products/{uuid.uuid4()}",
        content=b'{"stock": ',
        headers={**shop.as_admin(), "content-type": "application/json"},
    )
    assert response.status_code == 400


async def test_a_non_json_body_gets_415_before_400(shop: Shop) -> None:
    response = await shop.client.put(
        f"/products/{uuid.uuid4()}",
        content=b"{not json",
        headers={**shop.as_admin(), "content-type": "text/plain"},
    )
    assert response.status_code == 415


async def test_anonymous_write_gets_401_before_422(shop: Shop) -> None:
    response = await shop.client.post("/products", json={}, headers=shop.anonymous())
    assert response.status_code == 401


async def test_delete_by_a_user_gets_403_by_role_before_404(shop: Shop) -> None:
    response = await shop.client.delete(f"/products/{uuid.uuid4()}", headers=shop.as_user())
    assert response.status_code == 403


async def test_delete_of_a_missing_product_with_stale_if_match_gets_404(shop: Shop) -> None:
    response = await shop.client.delete(
        f"/products/{uuid.uuid4()}", headers={**shop.as_admin(), "if-match": STALE}
    )
    assert response.status_code == 404
