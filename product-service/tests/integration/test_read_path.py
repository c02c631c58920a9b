"""GET /products/{id}: one read path, rows straight to JSON, the same bytes as the model."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from product_service import repository
from product_service.models import Product
from product_service.schemas import ProductPublic
from testsupport.product import Shop

pytestmark = pytest.mark.anyio


async def _never(*_: Any, **__: Any) -> Any:
    raise AssertionError("the ORM path was taken")


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
async def test_the_body_is_byte_for_byte_what_the_documented_model_writes(
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
    assert (
        response.content == ProductPublic.model_validate(created.json()).model_dump_json().encode()
    )
    assert response.headers["etag"] == created.headers["etag"]
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(created.content)


async def test_a_driver_error_is_a_503_and_the_next_read_succeeds(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = await shop.create(shop.as_user())
    real = repository.read_product

    async def lost_once(connection: Any, product_id: uuid.UUID) -> Any:
        monkeypatch.setattr(repository, "read_product", real)
        raise DBAPIError(
            "SELECT", (product_id,), OSError("connection reset"), connection_invalidated=True
        )

    monkeypatch.setattr(repository, "read_product", lost_once)
    failed = await shop.client.get(f"/products/{product['id']}", headers=shop.anonymous())
    again = await shop.client.get(f"/products/{product['id']}", headers=shop.anonymous())

    assert failed.status_code == 503
    assert failed.headers["content-type"] == "application/problem+json"
    assert again.status_code == 200
    assert again.json() == product


async def test_if_none_match_with_the_current_etag_is_a_304(shop: Shop) -> None:
    owner = shop.as_user()
    created = await shop.client.post("/products", json={"name": "Lamp", "price": 1}, headers=owner)
    etag = created.headers["etag"]
    headers = {**shop.anonymous(), "If-None-Match": f'"other", W/{etag}'}

    response = await shop.client.get(created.headers["location"], headers=headers)

    assert response.status_code == 304
    assert response.headers["etag"] == etag
    assert response.content == b""


@pytest.mark.parametrize(
    "product_id",
    [
        pytest.param(str(uuid.uuid4()), id="no-such-product"),
        pytest.param("not-a-uuid", id="not-a-uuid"),
        pytest.param(f"{uuid.uuid4()}/", id="trailing-slash"),
    ],
)
async def test_an_id_that_names_no_product_is_a_404_problem(shop: Shop, product_id: str) -> None:
    response = await shop.client.get(f"/products/{product_id}", headers=shop.anonymous())
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_uppercase_ids_name_the_same_product(shop: Shop) -> None:
    product = await shop.create(shop.as_user())
    response = await shop.client.get(f"/products/{product['id'].upper()}", headers=shop.anonymous())
    assert response.status_code == 200
    assert response.json() == product


async def test_without_a_gateway_credential_the_read_is_refused(shop: Shop) -> None:
    product = await shop.create(shop.as_user())
    response = await shop.client.get(f"/products/{product['id']}")
    assert response.status_code == 401


async def test_reads_are_counted_under_the_route_template(shop: Shop) -> None:
    products = [await shop.create(shop.as_user()) for _ in range(3)]
    for product in products:
        response = await shop.client.get(f"/products/{product['id']}", headers=shop.anonymous())
        assert response.status_code == 200
    metrics = (await shop.client.get("/metrics")).text
    assert 'route="/products/{id}"' in metrics
    assert not any(product["id"] in metrics for product in products)


async def test_a_price_range_beyond_32_bits_lists_the_dearest_product(shop: Shop) -> None:
    dear = await shop.create(shop.as_user(), price=999999999.99)
    params = {"min_price": "999999999.5", "max_price": "1000000000", "limit": "100"}

    response = await shop.client.get("/products", params=params, headers=shop.anonymous())

    assert response.status_code == 200
    assert dear in response.json()["items"]


@pytest.mark.parametrize(
    "truncate",
    [
        pytest.param(False, id="microseconds"),
        pytest.param(True, id="timestamps-without-a-fraction"),
    ],
)
@pytest.mark.parametrize("sort", ["-created_at", "created_at", "name"])
async def test_a_list_item_is_byte_for_byte_the_product_read_by_id(
    shop: Shop, truncate: bool, sort: str
) -> None:
    # On PostgreSQL a page's timestamps are written by the database (to_char), a single
    # read's by orjson from the row: the two must agree, and the cursor must still work.
    owner = uuid.uuid4()
    created = [
        await shop.create(shop.as_user(str(owner)), name=name, price=0.1)
        for name in ("Lamp A", "Lamp B", "Lamp C")
    ]
    if truncate:
        async with shop.app.state.read_engine.begin() as connection:
            for product in created:
                moment = datetime.fromisoformat(product["created_at"]).replace(microsecond=0)
                await connection.execute(
                    update(Product)
                    .where(Product.id == uuid.UUID(product["id"]))
                    .values(created_at=moment, updated_at=moment)
                )
    items: list[dict[str, Any]] = []
    params = {"owner_id": str(owner), "sort": sort, "limit": "2"}
    cursor = None
    for _ in range(3):
        page = await shop.client.get(
            "/products",
            params={**params, **({"cursor": cursor} if cursor else {})},
            headers=shop.anonymous(),
        )
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break

    assert len({item["id"] for item in items}) == 3
    for item in items:
        read = await shop.client.get(f"/products/{item['id']}", headers=shop.anonymous())
        assert orjson.dumps(item) == read.content
        assert item["created_at"].endswith(".000000Z") == truncate
