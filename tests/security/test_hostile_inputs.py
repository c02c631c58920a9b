"""Hostile bodies and numbers, sent byte for byte over raw sockets to the real processes.

- One parser: a login or register body that auth-service reads as an account (a UTF-8
  BOM, UTF-16 or UTF-32, a full-width or ideographic spelling of the domain) counts
  against that account's per-email limit at the gateway; once the limit is reached,
  the right password in any such spelling gets 429.
- Numbers: a JSON number of any length is valid JSON (422 when out of range, never 400
  or 500), a decimal with thousands of digits is judged by its digits, and no library
  message reaches a client.
- Megabyte login fields are refused (422) by their size, before any normalisation.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.security.support import (
    PASSWORD,
    Shop,
    Tokens,
    login,
    random_email,
    register,
    running_shop,
)

pytestmark = pytest.mark.e2e

LOGIN_PER_EMAIL = 3
REGISTER_PER_EMAIL = 2
LIMITS = {
    "RATE_LIMIT_LOGIN_PER_EMAIL": f"{LOGIN_PER_EMAIL} per minute",
    "RATE_LIMIT_REGISTER_PER_EMAIL": f"{REGISTER_PER_EMAIL} per hour",
    "RATE_LIMIT_LOGIN_PER_ADDRESS": "10000 per minute",
    "RATE_LIMIT_REGISTER_PER_ADDRESS": "10000 per hour",
    "RATE_LIMIT_PER_ADDRESS": "100000 per minute",
}
MEGABYTE = 1_000_000
# What Python says when int() meets more than 4,300 digits; it must never reach a client.
LEAKS = ("int_max_str_digits", "integer string conversion", "Exceeds the limit")


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with running_shop(tmp_path_factory.mktemp("hostile-inputs"), **LIMITS) as running:
        yield running


def send(
    shop: Shop,
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request written byte for byte on its own connection; the whole reply."""
    url = urlsplit(shop.gateway)
    assert url.hostname is not None and url.port is not None
    fields = {
        "Host": url.netloc,
        "Connection": "close",
        "Content-Length": str(len(body)),
        **(headers or {}),
    }
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    with socket.create_connection((url.hostname, url.port), timeout=60) as connection:
        connection.sendall(head.encode("latin-1") + b"\r\n" + body)
        received = bytearray()
        while chunk := connection.recv(65536):
            received += chunk
    return _parse_reply(bytes(received))


def _parse_reply(raw: bytes) -> Reply:
    head, separator, rest = raw.partition(b"\r\n\r\n")
    assert separator, f"no complete reply: {raw[:200]!r}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    body = rest[: int(length)] if length is not None else rest
    return Reply(status=int(status_line.split(" ")[1]), headers=headers, body=body)


def post_json(shop: Shop, path: str, body: bytes, **headers: str) -> Reply:
    return send(shop, "POST", path, body, {"Content-Type": "application/json", **headers})


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False)


def _full_width_domain(document: dict[str, Any]) -> bytes:
    # example.com -> ｅxample.com: UTS-46 maps the full-width letter back to "e".
    return _text({**document, "email": document["email"].replace("@e", "@ｅ", 1)}).encode()


# Spellings of a body that auth-service reads as naming the same account.
SPELLINGS = [
    pytest.param(lambda doc: b"\xef\xbb\xbf" + _text(doc).encode(), id="utf-8-bom"),
    pytest.param(lambda doc: _text(doc).encode("utf-16-le"), id="utf-16-le"),
    pytest.param(lambda doc: _text(doc).encode("utf-16-be"), id="utf-16-be"),
    pytest.param(lambda doc: _text(doc).encode("utf-32"), id="utf-32"),
    pytest.param(_full_width_domain, id="full-width-domain"),
]
Spelling = Callable[[dict[str, Any]], bytes]


@pytest.mark.parametrize("spell", SPELLINGS)
def test_lockout_holds_for_the_right_password_in_any_spelling_the_service_reads(
    shop: Shop, spell: Spelling
) -> None:
    with shop.client(shop.new_address()) as client:
        account = register(client)
    right = {"email": account.email, "password": account.password}
    # Control: the service does log this spelling in, so a 429 below is the lockout's.
    assert post_json(shop, "/auth/login", spell(right)).status == 200
    wrong = json.dumps({"email": account.email, "password": "wrong password"}).encode()
    for _ in range(LOGIN_PER_EMAIL):
        assert post_json(shop, "/auth/login", wrong).status == 401
    disguised = post_json(shop, "/auth/login", spell(right))
    assert disguised.status == 429, disguised.body
    assert disguised.headers["retry-after"].isdigit()
    assert b"access_token" not in disguised.body


@pytest.mark.parametrize("spell", SPELLINGS)
def test_failed_logins_in_any_spelling_count_against_the_one_account(
    shop: Shop, spell: Spelling
) -> None:
    with shop.client(shop.new_address()) as client:
        account = register(client)
    wrong = {"email": account.email, "password": "wrong password"}
    for _ in range(LOGIN_PER_EMAIL):
        assert post_json(shop, "/auth/login", spell(wrong)).status == 401
    right = json.dumps({"email": account.email, "password": account.password}).encode()
    assert post_json(shop, "/auth/login", right).status == 429


@pytest.mark.parametrize("spell", SPELLINGS)
def test_registrations_in_any_spelling_count_against_the_one_email(
    shop: Shop, spell: Spelling
) -> None:
    document = {"name": "Mallory", "email": random_email(), "password": PASSWORD}
    plain = json.dumps(document).encode()
    assert post_json(shop, "/auth/register", plain).status == 201
    assert post_json(shop, "/auth/register", plain).status == 409
    assert post_json(shop, "/auth/register", spell(document)).status == 429


@pytest.fixture(scope="module")
def seller(shop: Shop) -> Tokens:
    with shop.client(shop.new_address()) as client:
        account = register(client)
        return login(client, account.email, account.password)


def create(shop: Shop, seller: Tokens, fields: bytes) -> Reply:
    body = b'{"name": "Lamp ' + secrets.token_hex(3).encode() + b'", ' + fields + b"}"
    return post_json(shop, "/products", body, Authorization=f"Bearer {seller.access_token}")


def assert_refused_without_leak(reply: Reply, field: str) -> None:
    assert reply.status == 422, reply.body
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in reply.json()["errors"]] == [field]
    assert not any(leak.encode() in reply.body for leak in LEAKS), reply.body


@pytest.mark.parametrize(
    "bound",
    [
        pytest.param("1." + "0" * 4400, id="1.<4400 zeros>"),
        pytest.param("1." + "0" * 4400 + "1", id="1.<4400 zeros>1"),
        pytest.param("0." + "9" * 5000, id="0.<5000 nines>"),
    ],
)
def test_a_price_bound_with_thousands_of_decimals_filters_exactly(shop: Shop, bound: str) -> None:
    for name in ("min_price", "max_price"):
        reply = send(shop, "GET", f"/products?{name}={bound}&limit=1")
        assert reply.status == 200, reply.body
        assert "items" in reply.json()


def test_a_price_bound_with_thousands_of_integer_digits_is_out_of_range(shop: Shop) -> None:
    reply = send(shop, "GET", "/products?min_price=" + "7" * 4400)
    assert_refused_without_leak(reply, "query.min_price")


def test_a_price_with_4310_decimals_is_judged_by_its_digits(shop: Shop, seller: Tokens) -> None:
    too_precise = create(shop, seller, b'"price": 1.' + b"0" * 4309 + b"1")
    assert_refused_without_leak(too_precise, "price")
    assert "decimal places" in too_precise.json()["errors"][0]["message"]
    whole = create(shop, seller, b'"price": 19.99' + b"0" * 4310)
    assert whole.status == 201, whole.body
    assert whole.json()["price"] == 19.99


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param(b'"price": ' + b"7" * 4301, "price", id="price-of-4301-digits"),
        pytest.param(b'"price": -' + b"7" * 100_000, "price", id="price-of-100000-digits"),
        pytest.param(b'"price": 1, "stock": ' + b"7" * 4301, "stock", id="stock-of-4301-digits"),
    ],
)
def test_an_integer_of_thousands_of_digits_is_valid_json_and_out_of_range(
    shop: Shop, seller: Tokens, fields: bytes, field: str
) -> None:
    assert_refused_without_leak(create(shop, seller, fields), field)


def test_a_login_with_a_huge_number_for_email_is_a_validation_error(shop: Shop) -> None:
    reply = post_json(shop, "/auth/login", b'{"email": ' + b"7" * 4301 + b', "password": "x"}')
    assert_refused_without_leak(reply, "email")


@pytest.mark.parametrize(
    ("field", "document"),
    [
        pytest.param(
            "email", {"email": "a@" + "b" * MEGABYTE + ".com", "password": PASSWORD}, id="email"
        ),
        pytest.param(
            "password", {"email": random_email(), "password": "p" * MEGABYTE}, id="password"
        ),
        pytest.param(
            "password",
            {"email": random_email(), "password": "\ufdfa" * (MEGABYTE // 4)},
            id="password-of-widest-nfkc-expansions",
        ),
    ],
)
def test_megabyte_login_fields_are_refused_by_their_size(
    shop: Shop, field: str, document: dict[str, str]
) -> None:
    reply = post_json(shop, "/auth/login", _text(document).encode())
    assert reply.status == 422, reply.body[:300]
    assert [error["field"] for error in reply.json()["errors"]] == [field]
