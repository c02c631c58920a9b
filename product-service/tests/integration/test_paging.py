"""GET /products: keyset paging over 1,000 products with every sort and filter."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from product_service.cursors import SORTS, sort_column
from product_service.models import Product
from shop_common.database import create_engine
from shop_common.testing import GatewayKeys
from testsupport.product import BACKENDS, Shop, migrated_database, running_shop

pytestmark = pytest.mark.anyio

COUNT = 1000
OWNERS = [uuid.UUID(int=n + 1) for n in range(5)]
WORDS = ["alpha", "Beta", "GAMMA", "delta", "épée"]


def row(n: int, base: datetime) -> dict[str, Any]:
    word = WORDS[n % len(WORDS)]
    name = f"{word.upper() if n % 2 else word} {n % 40}"  # many names equal case-insensitively
    description = "plain"
    if n % 10 == 0:
        description = "has a Needle inside"
    if n % 13 == 0:
        description = "now 50%_off"
    return {
        "id": uuid.uuid4(),
        "name": name,
        "name_lower": name.casefold(),
        "description": description,
        "description_lower": description.casefold(),
        "price_cents": (n % 50) * 100 + n % 3,  # 150 distinct prices: many ties
        "currency": "USD",
        "stock": n,
        "sku": None,
        "owner_id": OWNERS[n % len(OWNERS)],
        "created_at": base + timedelta(seconds=n // 4),  # four products per instant
        "updated_at": base,
        "version": 1,
    }


@dataclass
class Catalogue:
    shop: Shop
    rows: list[dict[str, Any]]
    url: str

    async def ordered_ids(self, sort: str, where: list[Any] | None = None) -> list[str]:
        """The database's own complete order for a sort (its collation decides names)."""
        column = getattr(Product, sort_column(sort))  # type: ignore[arg-type]
        order = (
            (column.desc(), Product.id.desc())
            if sort.startswith("-")
            else (column.asc(), Product.id.asc())
        )
        engine = create_engine(self.url)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(
                    select(Product.id).where(*(where or [])).order_by(*order)
                )
                return [str(value) for value in result.scalars()]
        finally:
            await engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
async def catalogue(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    gateway_keys: GatewayKeys,
    data_dir: Path,
) -> AsyncIterator[Catalogue]:
    async for url in migrated_database(request.param, tmp_path_factory.mktemp("paging")):
        base = datetime(2026, 1, 1, tzinfo=UTC)
        rows = [row(n, base) for n in range(COUNT)]
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.execute(insert(Product), rows)
        await engine.dispose()
        async with running_shop(url, gateway_keys, data_dir) as shop:
            yield Catalogue(shop=shop, rows=rows, url=url)


async def walk(
    shop: Shop, params: dict[str, Any], between_pages: Any = None
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(COUNT + 10):
        response = await shop.client.get(
            "/products",
            params={**params, **({"cursor": cursor} if cursor else {})},
            headers=shop.anonymous(),
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= params.get("limit", 20)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert len(page["items"]) == params.get("limit", 20)
        if between_pages is not None:
            await between_pages()
    raise AssertionError("paging never ended")


@pytest.mark.parametrize("sort", SORTS)
async def test_walking_every_page_returns_each_product_once_in_order(
    catalogue: Catalogue, sort: str
) -> None:
    items = await walk(catalogue.shop, {"sort": sort, "limit": 37})
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == COUNT
    assert ids == await catalogue.ordered_ids(sort)
    if sort.lstrip("-") == "created_at":
        keys = [(item["created_at"], uuid.UUID(item["id"]).bytes) for item in items]
        assert keys == sorted(keys, reverse=sort.startswith("-"))
    if sort.lstrip("-") == "price":
        keys2 = [(item["price"], uuid.UUID(item["id"]).bytes) for item in items]
        assert keys2 == sorted(keys2, reverse=sort.startswith("-"))


async def test_the_default_sort_is_newest_first(catalogue: Catalogue) -> None:
    response = await catalogue.shop.client.get("/products", headers=catalogue.shop.anonymous())
    page = response.json()
    assert len(page["items"]) == 20
    assert [item["id"] for item in page["items"]] == (await catalogue.ordered_ids("-created_at"))[
        :20
    ]


def matching(rows: list[dict[str, Any]], **filters: Any) -> set[str]:
    selected = set()
    for r in rows:
        if "q" in filters and filters["q"].casefold() not in (
            r["name_lower"] + "\x00" + r["description_lower"]
        ):
            continue
        if "min_cents" in filters and r["price_cents"] < filters["min_cents"]:
            continue
        if "max_cents" in filters and r["price_cents"] > filters["max_cents"]:
            continue
        if "owner_id" in filters and r["owner_id"] != filters["owner_id"]:
            continue
        selected.add(str(r["id"]))
    return selected


FILTERS = [
    pytest.param({"q": "NEEDLE"}, {"q": "needle"}, id="q-case-insensitive"),
    pytest.param({"q": "50%_off"}, {"q": "50%_off"}, id="q-percent-underscore-literal"),
    pytest.param({"q": "%"}, {"q": "%"}, id="q-percent-alone"),
    pytest.param({"q": "_"}, {"q": "_"}, id="q-underscore-alone"),
    pytest.param({"q": "ÉPÉE 1"}, {"q": "épée 1"}, id="q-unicode-case"),
    pytest.param({"q": "a 1"}, {"q": "a 1"}, id="q-name"),
    pytest.param(
        {"min_price": "10.005", "max_price": "30"},
        {"min_cents": 1001, "max_cents": 3000},
        id="price-range",
    ),
    pytest.param({"min_price": "49.01"}, {"min_cents": 4901}, id="min-only"),
    pytest.param({"max_price": "0.02"}, {"max_cents": 2}, id="max-only"),
    pytest.param(
        {"min_price": "7", "max_price": "7"}, {"min_cents": 700, "max_cents": 700}, id="one-price"
    ),
    pytest.param({"owner_id": str(OWNERS[2])}, {"owner_id": OWNERS[2]}, id="owner"),
    pytest.param(
        {"owner_id": str(OWNERS[1]), "q": "needle", "min_price": "5", "max_price": "40"},
        {"owner_id": OWNERS[1], "q": "needle", "min_cents": 500, "max_cents": 4000},
        id="all-filters",
    ),
    pytest.param({"q": "nothing like this"}, {"q": "nothing like this"}, id="no-match"),
]


@pytest.mark.parametrize(("params", "expected"), FILTERS)
@pytest.mark.parametrize("sort", ["-created_at", "price", "-name"])
async def test_walking_with_filters_returns_exactly_the_matches(
    catalogue: Catalogue, params: dict[str, Any], expected: dict[str, Any], sort: str
) -> None:
    items = await walk(catalogue.shop, {**params, "sort": sort, "limit": 50})
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    assert set(ids) == matching(catalogue.rows, **expected)
    full = await catalogue.ordered_ids(sort)
    assert ids == [product_id for product_id in full if product_id in set(ids)]


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "price", "-name"])
async def test_inserts_between_pages_cause_no_duplicate_and_no_gap(
    catalogue: Catalogue, sort: str
) -> None:
    shop = catalogue.shop
    owner = shop.as_user()
    before = set(await catalogue.ordered_ids(sort))
    counter = 0

    async def insert_some() -> None:
        nonlocal counter
        for price in (0, 25, 49.5):
            counter += 1
            await shop.create(owner, name=f"inserted {counter}", price=price, sku=None)

    items = await walk(shop, {"sort": sort, "limit": 100}, between_pages=insert_some)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    assert before <= set(ids)


async def test_next_cursor_is_null_exactly_when_nothing_remains(catalogue: Catalogue) -> None:
    owner = str(OWNERS[0])
    total = len(matching(catalogue.rows, owner_id=OWNERS[0]))
    shop = catalogue.shop
    exact = await shop.client.get(
        "/products", params={"owner_id": owner, "limit": 100}, headers=shop.anonymous()
    )
    assert total > 100 and exact.json()["next_cursor"] is not None
    whole = await walk(shop, {"owner_id": owner, "limit": 100})
    assert len(whole) == total
    last_full = await shop.client.get(
        "/products",
        params={"q": "50%_off", "limit": len(matching(catalogue.rows, q="50%_off"))},
        headers=shop.anonymous(),
    )
    assert last_full.json()["next_cursor"] is None


async def test_a_cursor_works_with_another_limit(catalogue: Catalogue) -> None:
    shop = catalogue.shop
    first = await shop.client.get("/products", params={"limit": 5}, headers=shop.anonymous())
    cursor = first.json()["next_cursor"]
    second = await shop.client.get(
        "/products", params={"limit": 7, "cursor": cursor}, headers=shop.anonymous()
    )
    assert second.status_code == 200
    expected = (await catalogue.ordered_ids("-created_at"))[5:12]
    assert [item["id"] for item in second.json()["items"]] == expected
