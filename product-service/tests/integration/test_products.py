"""Each row of the contract's Products section, with its success and its error statuses."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from shop_common.testing import random_sku
from testsupport.product import Shop

pytestmark = pytest.mark.anyio

FIELDS = {
    "id",
    "name",
    "description",
    "price",
    "currency",
    "stock",
    "sku",
    "owner_id",
    "created_at",
    "updated_at",
    "version",
}


def assert_rfc3339_utc(value: str) -> None:
    assert value.endswith("Z")
    assert datetime.fromisoformat(value).utcoffset() is not None


async def test_post_creates_a_product_owned_by_the_caller(shop: Shop) -> None:
    owner_id = str(uuid.uuid4())
    sku = random_sku()
    response = await shop.client.post(
        "/products",
        json={
            "name": "  Desk lamp  ",
            "description": "Warm\tlight\r\nfor reading",
            "price": 19.99,
            "currency": "EUR",
            "stock": 3,
            "sku": sku,
        },
        headers=shop.as_user(owner_id),
    )
    assert response.status_code == 201
    product = response.json()
    assert set(product) == FIELDS
    assert product["name"] == "Desk lamp"
    assert product["description"] == "Warm\tlight\r\nfor reading"
    assert (product["price"], product["currency"], product["stock"]) == (19.99, "EUR", 3)
    assert product["sku"] == sku
    assert product["owner_id"] == owner_id
    assert product["version"] == 1
    assert str(uuid.UUID(product["id"])) == product["id"]
    assert_rfc3339_utc(product["created_at"])
    assert product["updated_at"] == product["created_at"]
    assert response.headers["location"] == f"/products/{product['id']}"
    assert response.headers["etag"].startswith('"')


async def test_post_fills_the_optional_fields_with_their_defaults(shop: Shop) -> None:
    response = await shop.client.post(
        "/products", json={"name": "Chair", "price": 120}, headers=shop.as_user()
    )
    assert response.status_code == 201
    product = response.json()
    assert (product["description"], product["currency"], product["stock"]) == ("", "USD", 0)
    assert product["sku"] is None
    assert product["price"] == 120 and isinstance(product["price"], int)


async def test_post_with_a_used_sku_returns_409(shop: Shop) -> None:
    sku = random_sku()
    await shop.create(shop.as_user(), sku=sku)
    response = await shop.client.post(
        "/products", json={"name": "Copy", "price": 1, "sku": sku}, headers=shop.as_user()
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"


async def test_products_without_sku_do_not_conflict(shop: Shop) -> None:
    owner = shop.as_user()
    await shop.create(owner, sku=None)
    await shop.create(owner, sku=None)


async def test_get_returns_the_product_and_its_etag(shop: Shop) -> None:
    created = await shop.create(shop.as_user())
    response = await shop.client.get(f"/products/{created['id']}", headers=shop.anonymous())
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"]


@pytest.mark.parametrize(
    "product_id",
    [
        pytest.param(str(uuid.uuid4()), id="unknown"),
        pytest.param("not-a-uuid", id="malformed"),
        pytest.param("12345", id="number"),
        pytest.param(uuid.uuid4().hex, id="uuid-without-dashes"),
    ],
)
async def test_get_of_a_missing_product_returns_404(shop: Shop, product_id: str) -> None:
    response = await shop.client.get(f"/products/{product_id}", headers=shop.anonymous())
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404 and body["request_id"] == response.headers["x-request-id"]


async def test_a_trailing_slash_is_an_unknown_path(shop: Shop) -> None:
    created = await shop.create(shop.as_user())
    for path in ("/products/", f"/products/{created['id']}/"):
        response = await shop.client.get(path, headers=shop.anonymous())
        assert response.status_code == 404


async def test_a_method_the_path_does_not_have_returns_405_with_allow(shop: Shop) -> None:
    response = await shop.client.delete("/products", headers=shop.as_admin())
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


async def test_put_replaces_every_field_and_resets_the_ones_not_given(shop: Shop) -> None:
    owner = shop.as_user()
    created = await shop.create(owner, description="old", currency="EUR", stock=5, sku=random_sku())
    response = await shop.client.put(
        f"/products/{created['id']}", json={"name": "New", "price": 5.5}, headers=owner
    )
    assert response.status_code == 200
    product = response.json()
    assert (product["name"], product["price"]) == ("New", 5.5)
    assert (product["description"], product["currency"], product["stock"], product["sku"]) == (
        "",
        "USD",
        0,
        None,
    )
    assert product["version"] == created["version"] + 1
    assert product["created_at"] == created["created_at"]
    assert product["updated_at"] > created["updated_at"]
    assert response.headers["etag"] != (await etag_of(shop, created["id"], previous=True))


async def etag_of(shop: Shop, product_id: str, previous: bool = False) -> str:
    response = await shop.client.get(f"/products/{product_id}", headers=shop.anonymous())
    etag: str = response.headers["etag"]
    return etag.replace("-2", "-1") if previous else etag


async def test_put_needs_name_and_price(shop: Shop) -> None:
    owner = shop.as_user()
    created = await shop.create(owner)
    for body in ({"name": "Only name"}, {"price": 3}):
        response = await shop.client.put(f"/products/{created['id']}", json=body, headers=owner)
        assert response.status_code == 422


async def test_patch_changes_only_the_fields_given(shop: Shop) -> None:
    owner = shop.as_user()
    created = await shop.create(owner, description="keep", stock=7)
    response = await shop.client.patch(
        f"/products/{created['id']}", json={"price": 0.1}, headers=owner
    )
    assert response.status_code == 200
    product = response.json()
    assert product["price"] == 0.1
    assert {k: v for k, v in product.items() if k not in {"price", "version", "updated_at"}} == {
        k: v for k, v in created.items() if k not in {"price", "version", "updated_at"}
    }
    assert product["version"] == 2
    assert response.headers["etag"] == await etag_of(shop, created["id"])


async def test_patch_with_null_sku_clears_it(shop: Shop) -> None:
    owner = shop.as_user()
    created = await shop.create(owner)
    response = await shop.client.patch(
        f"/products/{created['id']}", json={"sku": None}, headers=owner
    )
    assert response.status_code == 200
    assert response.json()["sku"] is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="empty"),
        pytest.param({"name": None}, id="null-name"),
        pytest.param({"price": None}, id="null-price"),
        pytest.param({"description": None}, id="null-description"),
        pytest.param({"currency": None}, id="null-currency"),
        pytest.param({"stock": None}, id="null-stock"),
        pytest.param({"version": 5}, id="version"),
        pytest.param({"owner_id": str(uuid.uuid4())}, id="owner"),
        pytest.param([{"name": "x"}], id="array"),
        pytest.param("name", id="string"),
    ],
)
async def test_patch_with_an_invalid_body_returns_422_and_changes_nothing(
    shop: Shop, body: object
) -> None:
    owner = shop.as_user()
    created = await shop.create(owner)
    response = await shop.client.patch(f"/products/{created['id']}", json=body, headers=owner)
    assert response.status_code == 422
    assert response.json()["errors"]
    assert (await shop.client.get(f"/products/{created['id']}", headers=owner)).json() == created


async def test_patch_to_a_used_sku_returns_409_and_changes_nothing(shop: Shop) -> None:
    owner = shop.as_user()
    taken = await shop.create(owner)
    created = await shop.create(owner)
    for method in ("PATCH", "PUT"):
        response = await shop.client.request(
            method,
            f"/products/{created['id']}",
            json={"name": "x", "price": 1, "sku": taken["sku"]},
            headers=owner,
        )
        assert response.status_code == 409
    assert (await shop.client.get(f"/products/{created['id']}", headers=owner)).json() == created


async def test_patch_keeping_its_own_sku_is_no_conflict(shop: Shop) -> None:
    owner = shop.as_user()
    created = await shop.create(owner)
    response = await shop.client.patch(
        f"/products/{created['id']}", json={"sku": created["sku"], "stock": 1}, headers=owner
    )
    assert response.status_code == 200


async def test_admin_may_change_any_product(shop: Shop) -> None:
    created = await shop.create(shop.as_user())
    admin = shop.as_admin()
    patched = await shop.client.patch(
        f"/products/{created['id']}", json={"stock": 9}, headers=admin
    )
    assert patched.status_code == 200
    put = await shop.client.put(
        f"/products/{created['id']}", json={"name": "By admin", "price": 2}, headers=admin
    )
    assert put.status_code == 200
    assert put.json()["owner_id"] == created["owner_id"]


async def test_delete_by_admin_returns_204_and_the_product_is_gone(shop: Shop) -> None:
    created = await shop.create(shop.as_user())
    response = await shop.client.delete(f"/products/{created['id']}", headers=shop.as_admin())
    assert response.status_code == 204
    assert response.content == b""
    gone = await shop.client.get(f"/products/{created['id']}", headers=shop.anonymous())
    assert gone.status_code == 404
    again = await shop.client.delete(f"/products/{created['id']}", headers=shop.as_admin())
    assert again.status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "product_id",
    [pytest.param(None, id="unknown"), pytest.param("not-a-uuid", id="malformed")],
)
async def test_writes_to_a_missing_product_return_404(
    shop: Shop, method: str, product_id: str | None
) -> None:
    path = f"/products/{product_id or uuid.uuid4()}"
    body = {"name": "x", "price": 1} if method != "DELETE" else None
    response = await shop.client.request(method, path, json=body, headers=shop.as_admin())
    assert response.status_code == 404


async def test_a_body_of_another_content_type_gets_415(shop: Shop) -> None:
    response = await shop.client.post(
        "/products",
        content=b'{"name": "x", "price": 1}',
        headers={**shop.as_user(), "content-type": "text/plain"},
    )
    assert response.status_code == 415


async def test_malformed_json_gets_400(shop: Shop) -> None:
    response = await shop.client.post(
        "/products",
        content=b'{"name": "x", "price": 1',
        headers={**shop.as_user(), "content-type": "application/json"},
    )
    assert response.status_code == 400


async def test_a_body_over_the_limit_gets_413(shop: Shop) -> None:
    response = await shop.client.post(
        "/products",
        content=b'{"name": "' + b"x" * (1024 * 1024) + b'", "price": 1}',
        headers={**shop.as_user(), "content-type": "application/json"},
    )
    assert response.status_code == 413
