"""Body validation: exact prices, the string rules and the fields a client may not set."""

from __future__ import annotations

from typing import Any

import pytest

from shop_common.testing import random_sku
from testsupport.product import Shop

pytestmark = pytest.mark.anyio


async def post_raw(shop: Shop, body: bytes) -> Any:
    return await shop.client.post(
        "/products",
        content=body,
        headers={**shop.as_user(), "content-type": "application/json"},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("19.99", "19.99", id="19.99"),
        pytest.param("0.1", "0.1", id="0.1"),
        pytest.param("1e2", "100", id="1e2"),
        pytest.param("1000000000", "1000000000", id="maximum"),
        pytest.param("1.000", "1", id="1.000"),
        pytest.param("1999e-2", "19.99", id="1999e-2"),
        pytest.param("0", "0", id="zero"),
        pytest.param("999999999.99", "999999999.99", id="twelve-digits"),
        pytest.param("0.07", "0.07", id="0.07"),
    ],
)
async def test_prices_come_back_exactly(shop: Shop, text: str, expected: str) -> None:
    response = await post_raw(shop, b'{"name": "Priced", "price": ' + text.encode() + b"}")
    assert response.status_code == 201, response.text
    assert f'"price":{expected},'.encode() in response.content
    fetched = await shop.client.get(response.headers["location"], headers=shop.anonymous())
    assert f'"price":{expected},'.encode() in fetched.content


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("19.999", id="three-places"),
        pytest.param("0.30000000000000001", id="float-noise"),
        pytest.param("-1", id="negative"),
        pytest.param("1000000000.01", id="above-maximum"),
        pytest.param('"19.99"', id="numeric-string"),
        pytest.param('"abc"', id="string"),
        pytest.param("true", id="bool"),
        pytest.param("null", id="null"),
        pytest.param("{}", id="object"),
        pytest.param("1e999999", id="huge-exponent"),
        pytest.param("1e99999999999999999999", id="exponent-beyond-decimal"),
        pytest.param("1e-99999999999999999999", id="tiny-beyond-decimal"),
        pytest.param("7" * 4301, id="int-of-4301-digits"),
        pytest.param("-" + "7" * 100_000, id="int-of-100000-digits"),
        pytest.param("1." + "0" * 4309 + "1", id="4310-decimals"),
    ],
)
async def test_invalid_prices_get_422_with_the_field(shop: Shop, text: str) -> None:
    response = await post_raw(shop, b'{"name": "Priced", "price": ' + text.encode() + b"}")
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["price"]
    assert "digits" not in response.text  # never Python's int() message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("5.0", 5, id="integral-fraction"),
        pytest.param("5e0", 5, id="exponent"),
        pytest.param("2.147483647e9", 2147483647, id="maximum-with-exponent"),
        pytest.param("5.5", None, id="fraction"),
        pytest.param("2147483648.0", None, id="above-maximum"),
        pytest.param("-1.0", None, id="negative"),
        pytest.param("1e999999999", None, id="huge-exponent"),
        pytest.param("1e99999999999999999999", None, id="exponent-beyond-decimal"),
        pytest.param("7" * 4301, None, id="int-of-4301-digits"),
        pytest.param("-" + "7" * 4301, None, id="negative-int-of-4301-digits"),
    ],
)
async def test_stock_is_a_json_number_without_a_fraction(
    shop: Shop, text: str, expected: int | None
) -> None:
    body = b'{"name": "Stocked", "price": 1, "stock": ' + text.encode() + b"}"
    response = await post_raw(shop, body)
    if expected is None:
        assert response.status_code == 422, response.text
        assert [error["field"] for error in response.json()["errors"]] == ["stock"]
    else:
        assert response.status_code == 201, response.text
        assert response.json()["stock"] == expected


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_json_constants_are_malformed_json(shop: Shop, text: str) -> None:
    response = await post_raw(shop, b'{"name": "Priced", "price": ' + text.encode() + b"}")
    assert response.status_code == 400


async def test_patch_rejects_an_inexact_price_and_changes_nothing(shop: Shop) -> None:
    owner = shop.as_user()
    created = await shop.create(owner)
    response = await shop.client.patch(
        f"/products/{created['id']}",
        content=b'{"price": 0.30000000000000001}',
        headers={**owner, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert (await shop.client.get(f"/products/{created['id']}", headers=owner)).json() == created


VALID = {"name": "Valid", "price": 1}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"name": ""}, "name", id="empty-name"),
        pytest.param({"name": "   "}, "name", id="blank-name"),
        pytest.param({"name": "x" * 201}, "name", id="long-name"),
        pytest.param({"name": "a\x00b"}, "name", id="nul-in-name"),
        pytest.param({"name": "a\tb"}, "name", id="tab-in-name"),
        pytest.param({"name": "a\x7fb"}, "name", id="del-in-name"),
        pytest.param({"name": "a\x85b"}, "name", id="c1-in-name"),
        pytest.param({"name": 5}, "name", id="number-name"),
        pytest.param({"description": "x" * 5001}, "description", id="long-description"),
        pytest.param({"description": "a\x01b"}, "description", id="control-in-description"),
        pytest.param({"description": None}, "description", id="null-description"),
        pytest.param({"currency": "usd"}, "currency", id="lowercase-currency"),
        pytest.param({"currency": "ABC"}, "currency", id="unknown-currency"),
        pytest.param({"currency": "XXX"}, "currency", id="no-currency-code"),
        pytest.param({"currency": "US"}, "currency", id="short-currency"),
        pytest.param({"currency": 840}, "currency", id="numeric-currency"),
        pytest.param({"stock": -1}, "stock", id="negative-stock"),
        pytest.param({"stock": 2147483648}, "stock", id="stock-too-large"),
        pytest.param({"stock": 1.5}, "stock", id="fractional-stock"),
        pytest.param({"stock": "3"}, "stock", id="string-stock"),
        pytest.param({"stock": True}, "stock", id="bool-stock"),
        pytest.param({"sku": ""}, "sku", id="empty-sku"),
        pytest.param({"sku": "  "}, "sku", id="blank-sku"),
        pytest.param({"sku": "x" * 65}, "sku", id="long-sku"),
        pytest.param({"sku": "a\nb"}, "sku", id="newline-in-sku"),
        pytest.param({"sku": 12}, "sku", id="number-sku"),
        pytest.param({"id": "00000000-0000-0000-0000-000000000000"}, "id", id="id"),
        pytest.param({"owner_id": "00000000-0000-0000-0000-000000000000"}, "owner_id", id="owner"),
        pytest.param({"created_at": "2020-01-01T00:00:00Z"}, "created_at", id="created_at"),
        pytest.param({"updated_at": "2020-01-01T00:00:00Z"}, "updated_at", id="updated_at"),
        pytest.param({"version": 7}, "version", id="version"),
        pytest.param({"price_cents": 100}, "price_cents", id="storage-name"),
        pytest.param({"colour": "red"}, "colour", id="unknown"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_invalid_fields_get_422_naming_the_field(
    shop: Shop, method: str, changes: dict[str, Any], field: str
) -> None:
    owner = shop.as_user()
    created = await shop.create(owner)
    path = "/products" if method == "POST" else f"/products/{created['id']}"
    body = changes if method == "PATCH" else {**VALID, **changes}
    response = await shop.client.request(method, path, json=body, headers=owner)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in problem["errors"]]
    assert (await shop.client.get(f"/products/{created['id']}", headers=owner)).json() == created


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"name": "x" * 200}, {"name": "x" * 200}, id="longest-name"),
        pytest.param({"name": "  spaced  "}, {"name": "spaced"}, id="trimmed-name"),
        pytest.param({"name": "Ünïcödé 💡"}, {"name": "Ünïcödé 💡"}, id="unicode-name"),
        pytest.param({"description": "x" * 5000}, {"description": "x" * 5000}, id="long-desc"),
        pytest.param(
            {"description": " keeps\tspaces "}, {"description": " keeps\tspaces "}, id="d"
        ),
        pytest.param({"stock": 2147483647}, {"stock": 2147483647}, id="max-stock"),
        # JSON numbers are values: 5.0 and 5e0 are the integer 5 (as 1.000 is the price 1).
        pytest.param({"stock": 5.0}, {"stock": 5}, id="integral-stock"),
        pytest.param({"stock": 5e0}, {"stock": 5}, id="exponent-stock"),
        pytest.param({"currency": "JPY"}, {"currency": "JPY"}, id="jpy"),
    ],
)
async def test_valid_edge_values_are_stored_as_given(
    shop: Shop, changes: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = await shop.client.post(
        "/products", json={**VALID, **changes}, headers=shop.as_user()
    )
    assert response.status_code == 201, response.text
    product = response.json()
    assert {key: product[key] for key in expected} == expected


async def test_a_sku_is_trimmed_and_may_be_64_characters(shop: Shop) -> None:
    longest = random_sku().ljust(64, "x")
    for given, stored in ((f"  {random_sku()} ", None), (longest, longest)):
        response = await shop.client.post(
            "/products", json={**VALID, "sku": given}, headers=shop.as_user()
        )
        assert response.status_code == 201, response.text
        assert response.json()["sku"] == (stored or given.strip())


@pytest.mark.parametrize("field", ["name", "description", "sku", "currency"])
async def test_a_lone_surrogate_in_a_string_is_refused_not_a_500(shop: Shop, field: str) -> None:
    body = b'{"name": "x", "price": 1, "%s": "a\\ud800b"}' % field.encode()
    response = await post_raw(shop, body)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_a_surrogate_pair_is_one_character(shop: Shop) -> None:
    response = await post_raw(shop, b'{"name": "lamp \\ud83d\\udca1", "price": 1}')
    assert response.status_code == 201
    assert response.json()["name"] == "lamp \U0001f4a1"
