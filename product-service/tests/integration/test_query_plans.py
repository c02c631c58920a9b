"""On PostgreSQL with 100,000 products, every list query is an index scan without OFFSET."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from product_service.cursors import SORTS
from shop_common.testing import GatewayKeys
from testsupport.product import Shop, migrated_database, running_shop

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ROWS = 100_000
OWNER = uuid.UUID(int=7)

BULK_INSERT = text(
    """
    INSERT INTO product (id, name, name_lower, description, description_lower, price_cents,
                         currency, stock, sku, owner_id, created_at, updated_at, version)
    SELECT gen_random_uuid(), 'Product ' || g, 'product ' || g, '', '',
           (g * 7919) % 100000, 'USD', 0, NULL,
           ('00000000-0000-0000-0000-' || lpad((g % 200)::text, 12, '0'))::uuid,
           now() - g * interval '1 second', now(), 1
    FROM generate_series(1, :rows) AS g
    """
)


@pytest.fixture(scope="module")
async def big_shop(
    tmp_path_factory: pytest.TempPathFactory, gateway_keys: GatewayKeys, data_dir: Path
) -> AsyncIterator[Shop]:
    async for url in migrated_database("postgres", tmp_path_factory.mktemp("plans")):
        async with running_shop(url, gateway_keys, data_dir) as shop:
            async with shop.app.state.engine.begin() as connection:
                # Setup, not a request: past the service's statement timeout on a busy machine.
                await connection.execute(text("SET LOCAL statement_timeout = 0"))
                await connection.execute(BULK_INSERT, {"rows": ROWS})
                await connection.execute(text("ANALYZE product"))
            yield shop


@contextlib.contextmanager
def product_selects(shop: Shop) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs from product the app runs inside the block, with their parameters."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM product" in statement:
            captured.append((statement, parameters))

    engine = shop.app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield captured
    finally:
        event.remove(engine, "before_cursor_execute", capture)


async def list_statements(shop: Shop, params: dict[str, Any]) -> list[tuple[str, Any]]:
    """The SQL the app runs for the first page and for the page after it."""
    with product_selects(shop) as captured:
        first = await shop.client.get("/products", params=params, headers=shop.anonymous())
        assert first.status_code == 200, first.text
        cursor = first.json()["next_cursor"]
        assert cursor is not None
        second = await shop.client.get(
            "/products", params={**params, "cursor": cursor}, headers=shop.anonymous()
        )
        assert second.status_code == 200
    assert len(captured) == 2
    return captured


async def plan(shop: Shop, statement: str, parameters: Any) -> str:
    async with shop.app.state.engine.connect() as connection:
        result = await connection.exec_driver_sql("EXPLAIN " + statement, parameters)
        return "\n".join(line for (line,) in result)


CASES = [
    *[pytest.param({"sort": sort}, True, id=f"sort={sort}") for sort in SORTS],
    *[
        pytest.param({"sort": sort, "owner_id": str(OWNER)}, True, id=f"owner,sort={sort}")
        for sort in SORTS
    ],
    *[
        pytest.param(
            {"sort": sort, "min_price": "100", "max_price": "200.5"},
            sort.lstrip("-") == "price",
            id=f"price-range,sort={sort}",
        )
        for sort in ("price", "-price", "-created_at", "name")
    ],
    pytest.param(
        {"sort": "-price", "owner_id": str(OWNER), "min_price": "10", "max_price": "900"},
        True,
        id="owner,price-range,sort=-price",
    ),
]


@pytest.mark.parametrize(("params", "in_index_order"), CASES)
async def test_list_queries_use_an_index_and_never_offset(
    big_shop: Shop, params: dict[str, Any], in_index_order: bool
) -> None:
    for statement, parameters in await list_statements(big_shop, params):
        assert "OFFSET" not in statement.upper()
        assert "count(" not in statement.lower()
        query_plan = await plan(big_shop, statement, parameters)
        assert "Seq Scan" not in query_plan, query_plan
        assert "Index" in query_plan, query_plan
        if in_index_order:  # rows come in index order: no sort of the matches
            assert "Sort" not in query_plan, query_plan


@pytest.mark.parametrize("params", [{"q": "zebra"}, {"q": "zebra", "sort": "price"}])
async def test_a_search_for_a_rare_word_reads_the_trigram_indexes_not_the_table(
    big_shop: Shop, params: dict[str, Any]
) -> None:
    with product_selects(big_shop) as captured:
        response = await big_shop.client.get(
            "/products", params=params, headers=big_shop.anonymous()
        )
    assert response.status_code == 200
    assert response.json()["items"] == []
    [(statement, parameters)] = captured
    query_plan = await plan(big_shop, statement, parameters)
    assert "Seq Scan" not in query_plan, query_plan
    assert "ix_product_name_lower_trgm" in query_plan, query_plan
    assert "ix_product_description_lower_trgm" in query_plan, query_plan
