"""GET /products parameters: each bad one gets 422 naming `query.<name>`; cursors are bound."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from testsupport.product import Shop

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"limit": "0"}, "query.limit", id="limit-zero"),
        pytest.param({"limit": "101"}, "query.limit", id="limit-above-100"),
        pytest.param({"limit": "abc"}, "query.limit", id="limit-text"),
        pytest.param({"limit": "-5"}, "query.limit", id="limit-negative"),
        pytest.param({"sort": "stock"}, "query.sort", id="unknown-sort"),
        pytest.param({"sort": ""}, "query.sort", id="empty-sort"),
        pytest.param({"sort": "Price"}, "query.sort", id="sort-case"),
        pytest.param({"q": "x" * 201}, "query.q", id="q-too-long"),
        pytest.param({"q": "a\x00b"}, "query.q", id="q-nul"),
        pytest.param({"q": "a\x85b"}, "query.q", id="q-c1-control"),
        pytest.param({"min_price": "-1"}, "query.min_price", id="negative-min"),
        pytest.param({"max_price": "-0.01"}, "query.max_price", id="negative-max"),
        pytest.param({"min_price": "NaN"}, "query.min_price", id="nan"),
        pytest.param({"max_price": "Infinity"}, "query.max_price", id="infinity"),
        pytest.param({"max_price": "inf"}, "query.max_price", id="inf"),
        pytest.param({"min_price": "1e999999"}, "query.min_price", id="huge"),
        pytest.param({"min_price": "1e99999999999999999999"}, "query.min_price", id="vast"),
        pytest.param({"max_price": "7" * 4400}, "query.max_price", id="4400-digit-integer"),
        pytest.param({"max_price": "1000000000.01"}, "query.max_price", id="above-maximum"),
        pytest.param({"min_price": "ten"}, "query.min_price", id="text"),
        pytest.param({"min_price": ""}, "query.min_price", id="empty"),
        pytest.param({"min_price": "5", "max_price": "4.99"}, "query.min_price", id="min>max"),
        pytest.param({"owner_id": "nope"}, "query.owner_id", id="malformed-owner"),
        pytest.param({"owner_id": "123"}, "query.owner_id", id="numeric-owner"),
        pytest.param({"cursor": "garbage"}, "query.cursor", id="garbage-cursor"),
        pytest.param({"cursor": ""}, "query.cursor", id="empty-cursor"),
    ],
)
async def test_a_bad_parameter_gets_422_naming_it(
    shop: Shop, params: dict[str, str], field: str
) -> None:
    response = await shop.client.get("/products", params=params, headers=shop.anonymous())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"limit": "1"}, id="limit-one"),
        pytest.param({"limit": "100"}, id="limit-hundred"),
        pytest.param({"q": "x" * 200}, id="q-200"),
        pytest.param({"q": ""}, id="q-empty"),
        pytest.param({"q": "tab\there"}, id="q-tab-as-in-descriptions"),
        pytest.param({"q": "\U0001f4a1 💡"}, id="q-astral"),
        pytest.param({"min_price": "0", "max_price": "1000000000"}, id="whole-range"),
        pytest.param({"min_price": "1.23456789"}, id="many-places"),
        pytest.param({"min_price": "4.5", "max_price": "4.5"}, id="min-equals-max"),
        pytest.param({"min_price": "1e2"}, id="exponent"),
        pytest.param({"min_price": "1." + "0" * 4400}, id="min-of-4400-decimals"),
        pytest.param({"max_price": "0." + "9" * 5000}, id="max-of-5000-decimals"),
        pytest.param({"owner_id": str(uuid.uuid4())}, id="owner"),
        pytest.param({"colour": "red", "page": "3"}, id="unknown-parameters-ignored"),
    ],
)
async def test_good_parameters_get_200(shop: Shop, params: dict[str, str]) -> None:
    response = await shop.client.get("/products", params=params, headers=shop.anonymous())
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"items", "next_cursor"}


async def first_cursor(shop: Shop, params: dict[str, Any]) -> str:
    owner = shop.as_user()
    for _ in range(3):
        await shop.create(owner, description="cursor test", price=5, sku=None)
    response = await shop.client.get(
        "/products", params={**params, "limit": 1}, headers=shop.anonymous()
    )
    cursor: str = response.json()["next_cursor"]
    assert cursor
    return cursor


BASE = {"sort": "price", "q": "cursor test", "min_price": "1", "max_price": "10"}


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"sort": "-price"}, id="other-sort"),
        pytest.param({"sort": "created_at"}, id="other-sort-column"),
        pytest.param({"q": "cursor"}, id="other-q"),
        pytest.param({"q": None}, id="q-dropped"),
        pytest.param({"min_price": "2"}, id="other-min"),
        pytest.param({"max_price": None}, id="max-dropped"),
        pytest.param({"owner_id": str(uuid.uuid4())}, id="owner-added"),
    ],
)
async def test_a_cursor_used_with_another_sort_or_filter_gets_422(
    shop: Shop, changes: dict[str, Any]
) -> None:
    cursor = await first_cursor(shop, BASE)
    params = {key: value for key, value in {**BASE, **changes}.items() if value is not None}
    response = await shop.client.get(
        "/products", params={**params, "cursor": cursor}, headers=shop.anonymous()
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.cursor"


async def test_the_same_filters_written_differently_keep_the_cursor_valid(shop: Shop) -> None:
    cursor = await first_cursor(shop, BASE)
    same: dict[str, Any] = {
        **BASE,
        "q": "CURSOR TEST",
        "min_price": "1.00",
        "max_price": "1e1",
        "limit": 2,
    }
    response = await shop.client.get(
        "/products", params={**same, "cursor": cursor}, headers=shop.anonymous()
    )
    assert response.status_code == 200


async def test_a_tampered_cursor_gets_422(shop: Shop) -> None:
    cursor = await first_cursor(shop, BASE)
    flipped = "A" if cursor[10] != "A" else "B"
    for tampered in (cursor[:10] + flipped + cursor[11:], cursor[:-1], cursor + "AA"):
        response = await shop.client.get(
            "/products", params={**BASE, "cursor": tampered}, headers=shop.anonymous()
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "query.cursor"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("q=%ff", id="invalid-utf8"),
        pytest.param("q=%ed%a0%80", id="encoded-surrogate"),
        pytest.param("owner_id=%00", id="nul-owner"),
        pytest.param("cursor=%ff%00", id="binary-cursor"),
        pytest.param("sort=%00", id="nul-sort"),
    ],
)
async def test_raw_query_bytes_never_cause_a_500(shop: Shop, query: str) -> None:
    response = await shop.client.get("/products?" + query, headers=shop.anonymous())
    assert response.status_code in (200, 422)


async def test_the_openapi_document_lists_every_parameter_with_its_schema(shop: Shop) -> None:
    # The route parses its query itself (parse_list_query); its documentation still comes
    # from list_request's signature.
    document = (await shop.client.get("/openapi.json", headers=shop.anonymous())).json()
    parameters = document["paths"]["/products"]["get"]["parameters"]
    schemas = {parameter["name"]: parameter["schema"] for parameter in parameters}
    assert {parameter["in"] for parameter in parameters} == {"query"}
    assert list(schemas) == ["limit", "cursor", "q", "min_price", "max_price", "owner_id", "sort"]
    assert (schemas["limit"]["minimum"], schemas["limit"]["maximum"]) == (1, 100)
    assert schemas["limit"]["default"] == 20
    assert schemas["cursor"]["anyOf"][0]["maxLength"] == 4096
    assert schemas["q"]["anyOf"][0]["maxLength"] == 200
    assert schemas["owner_id"]["anyOf"][0]["format"] == "uuid"
    assert schemas["sort"]["enum"] == [
        "created_at",
        "-created_at",
        "price",
        "-price",
        "name",
        "-name",
    ]
    assert schemas["sort"]["default"] == "-created_at"
