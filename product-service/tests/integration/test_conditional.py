"""ETag, If-None-Match (304) and If-Match (412), also under concurrent writes."""

from __future__ import annotations

import asyncio

import pytest

from shop_common.testing import random_sku
from testsupport.product import Shop

pytestmark = pytest.mark.anyio


async def fetch(shop: Shop, product_id: str, **headers: str) -> tuple[int, str, dict[str, object]]:
    response = await shop.client.get(
        f"/products/{product_id}", headers={**shop.anonymous(), **headers}
    )
    body = response.json() if response.status_code == 200 else {}
    return response.status_code, response.headers.get("etag", ""), body


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("{etag}", id="same"),
        pytest.param("W/{etag}", id="weak"),
        pytest.param("*", id="star"),
        pytest.param('"other", {etag}', id="list"),
    ],
)
async def test_if_none_match_that_matches_gets_304(shop: Shop, header: str) -> None:
    product = await shop.create(shop.as_user())
    _, etag, _ = await fetch(shop, product["id"])
    response = await shop.client.get(
        f"/products/{product['id']}",
        headers={
            **shop.anonymous(),
            "if-none-match": header.format(etag=etag, bare=etag.strip('"')),
        },
    )
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag


async def test_if_none_match_with_an_old_etag_gets_200(shop: Shop) -> None:
    owner = shop.as_user()
    product = await shop.create(owner)
    _, old, _ = await fetch(shop, product["id"])
    await shop.client.patch(f"/products/{product['id']}", json={"stock": 2}, headers=owner)
    status, new, body = await fetch(shop, product["id"], **{"if-none-match": old})
    assert status == 200 and new != old and body["stock"] == 2


async def test_if_none_match_on_a_missing_product_is_404(shop: Shop) -> None:
    response = await shop.client.get(
        "/products/00000000-0000-0000-0000-000000000000",
        headers={**shop.anonymous(), "if-none-match": "*"},
    )
    assert response.status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_stale_if_match_gets_412_and_changes_nothing(shop: Shop, method: str) -> None:
    owner = shop.as_user()
    product = await shop.create(owner)
    _, stale, _ = await fetch(shop, product["id"])
    await shop.client.patch(f"/products/{product['id']}", json={"stock": 5}, headers=owner)
    _, current, before = await fetch(shop, product["id"])
    response = await shop.client.request(
        method,
        f"/products/{product['id']}",
        json={"name": "Changed", "price": 2} if method != "DELETE" else None,
        headers={**shop.as_admin(), "if-match": stale},
    )
    assert response.status_code == 412
    assert await fetch(shop, product["id"]) == (200, current, before)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("{etag}", id="same"),
        pytest.param("*", id="star"),
        pytest.param('"other", {etag}', id="list"),
    ],
)
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_matching_if_match_lets_the_write_through(
    shop: Shop, method: str, header: str
) -> None:
    product = await shop.create(shop.as_user())
    _, etag, _ = await fetch(shop, product["id"])
    response = await shop.client.request(
        method,
        f"/products/{product['id']}",
        json={"name": "Changed", "price": 2} if method != "DELETE" else None,
        headers={**shop.as_admin(), "if-match": header.format(etag=etag, bare=etag.strip('"'))},
    )
    assert response.status_code == (204 if method == "DELETE" else 200)
    if method != "DELETE":
        assert response.headers["etag"] != etag
        assert response.json()["version"] == 2


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("W/{etag}", id="weak-never-matches"),
        pytest.param("{bare}", id="unquoted"),
        pytest.param("garbage", id="garbage"),
    ],
)
async def test_if_match_compares_strongly(shop: Shop, header: str) -> None:
    owner = shop.as_user()
    product = await shop.create(owner)
    _, etag, before = await fetch(shop, product["id"])
    response = await shop.client.patch(
        f"/products/{product['id']}",
        json={"stock": 3},
        headers={**owner, "if-match": header.format(etag=etag, bare=etag.strip('"'))},
    )
    assert response.status_code == 412
    assert await fetch(shop, product["id"]) == (200, etag, before)


async def test_every_write_changes_the_version_and_the_etag(shop: Shop) -> None:
    owner = shop.as_user()
    product = await shop.create(owner)
    seen = set()
    for stock in range(1, 5):
        response = await shop.client.patch(
            f"/products/{product['id']}", json={"stock": stock}, headers=owner
        )
        assert response.json()["version"] == stock + 1
        seen.add(response.headers["etag"])
    assert len(seen) == 4


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_of_ten_concurrent_writes_with_the_same_if_match_exactly_one_succeeds(
    shop: Shop, method: str
) -> None:
    owner = shop.as_user()
    product = await shop.create(owner)
    _, etag, _ = await fetch(shop, product["id"])

    async def write(stock: int) -> int:
        response = await shop.client.request(
            method,
            f"/products/{product['id']}",
            json={"name": "Race", "price": 1, "stock": stock},
            headers={**owner, "if-match": etag},
        )
        return response.status_code

    statuses = await asyncio.gather(*(write(stock) for stock in range(10)))
    assert sorted(statuses) == [200] + [412] * 9
    _, _, after = await fetch(shop, product["id"])
    assert after["version"] == 2


async def test_concurrent_writes_without_if_match_all_succeed_and_count(shop: Shop) -> None:
    owner = shop.as_user()
    product = await shop.create(owner)

    async def write(stock: int) -> int:
        response = await shop.client.patch(
            f"/products/{product['id']}", json={"stock": stock}, headers=owner
        )
        return response.status_code

    statuses = await asyncio.gather(*(write(stock) for stock in range(10)))
    assert statuses == [200] * 10
    _, _, after = await fetch(shop, product["id"])
    assert after["version"] == 11


async def test_concurrent_deletes_with_the_same_if_match_delete_once(shop: Shop) -> None:
    product = await shop.create(shop.as_user())
    _, etag, _ = await fetch(shop, product["id"])
    admin = {**shop.as_admin(), "if-match": etag}

    async def delete() -> int:
        response = await shop.client.delete(f"/products/{product['id']}", headers=admin)
        return response.status_code

    statuses = await asyncio.gather(*(delete() for _ in range(5)))
    assert statuses.count(204) == 1
    assert set(statuses) <= {204, 404, 412}


async def test_concurrent_creates_with_one_sku_give_one_201_and_409s(shop: Shop) -> None:
    sku = random_sku()

    async def create() -> int:
        response = await shop.client.post(
            "/products", json={"name": "Same", "price": 1, "sku": sku}, headers=shop.as_user()
        )
        return response.status_code

    statuses = await asyncio.gather(*(create() for _ in range(8)))
    assert sorted(statuses) == [201] + [409] * 7
