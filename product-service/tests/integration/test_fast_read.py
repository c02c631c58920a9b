"""GET /products/{id} is answered by the fast read path, exactly as the route would."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from product_service import fast_read, repository
from testsupport.product import Shop

pytestmark = pytest.mark.anyio


async def _never(*_: Any, **__: Any) -> Any:
    raise AssertionError("the ORM path was taken")


async def _database_gone(*_: Any, **__: Any) -> Any:
    raise OSError("connection reset")


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="plain"),
        pytest.param(
            {"name": "Lampe à poser ☃", "description": 'Ünïcode "quoted" \\ tab\t'},
            id="unicode",
        ),
        pytest.param({"price": 999999999.99, "stock": 2147483647}, id="largest"),
        pytest.param({"price": 0, "sku": None, "currency": "JPY"}, id="zero-no-sku"),
        pytest.param({"price": 0.1}, id="cents"),
    ],
)
async def test_the_body_is_byte_for_byte_what_the_route_wrote(
    shop: Shop, fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = shop.as_user()
    created = await shop.client.post(
        "/products", json={"name": "Lamp", "price": 19.99, **fields}, headers=owner
    )
    assert created.status_code == 201, created.text
    monkeypatch.setattr(repository, "get_product", _never)

    response = await shop.client.get(created.headers["location"], headers=shop.anonymous())

    assert response.status_code == 200
    assert response.content == created.content
    assert response.headers["etag"] == created.headers["etag"]
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(created.content)


async def test_a_lost_database_connection_is_left_to_the_route(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = await shop.create(shop.as_user())
    monkeypatch.setattr(fast_read, "read_product", _database_gone)

    response = await shop.client.get(f"/products/{product['id']}", headers=shop.anonymous())

    assert response.status_code == 200
    assert response.json() == product


@pytest.mark.parametrize(
    "product_id",
    [
        pytest.param(str(uuid.uuid4()), id="no-such-product"),
        pytest.param("not-a-uuid", id="not-a-uuid"),
        pytest.param(f"{uuid.uuid4()}/", id="trailing-slash"),
    ],
)
async def test_what_the_fast_path_cannot_answer_gets_the_routes_problem(
    shop: Shop, product_id: str
) -> None:
    response = await shop.client.get(f"/products/{product_id}", headers=shop.anonymous())
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_uppercase_ids_name_the_same_product(shop: Shop) -> None:
    product = await shop.create(shop.as_user())
    response = await shop.client.get(f"/products/{product['id'].upper()}", headers=shop.anonymous())
    assert response.status_code == 200
    assert response.json() == product


async def test_without_a_gateway_credential_the_fast_path_is_not_reached(shop: Shop) -> None:
    product = await shop.create(shop.as_user())
    response = await shop.client.get(f"/products/{product['id']}")
    assert response.status_code == 401


async def test_fast_reads_are_counted_under_the_route_template(shop: Shop) -> None:
    products = [await shop.create(shop.as_user()) for _ in range(3)]
    for product in products:
        response = await shop.client.get(f"/products/{product['id']}", headers=shop.anonymous())
        assert response.status_code == 200
    metrics = (await shop.client.get("/metrics")).text
    assert 'route="/products/{id}"' in metrics
    assert not any(product["id"] in metrics for product in products)
