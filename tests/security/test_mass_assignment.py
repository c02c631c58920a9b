"""Mass assignment (API3): fields a client must not set are refused whole, changing nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.security.support import (
    PASSWORD,
    admin_tokens,
    create_product,
    login,
    new_user,
    random_email,
)

pytestmark = pytest.mark.e2e

FOREIGN_ID = str(uuid.uuid4())
PAST = "2000-01-01T00:00:00Z"


def assert_refused_field(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = {error["field"] for error in response.json()["errors"]}
    assert any(field in name for name in fields), fields


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("role", "ADMIN", id="role"),
        pytest.param("role", "admin", id="role-lower-case"),
        pytest.param("id", FOREIGN_ID, id="id"),
        pytest.param("created_at", PAST, id="created_at"),
        pytest.param("password_hash", "$2b$04$" + "a" * 53, id="password_hash"),
        pytest.param("is_admin", True, id="is_admin"),
    ],
)
def test_mass_assignment_on_register_is_refused_and_creates_nothing(
    gateway: httpx.Client, field: str, value: Any
) -> None:
    email = random_email()
    body = {"name": "Mallory", "email": email, "password": PASSWORD, field: value}
    assert_refused_field(gateway.post("/auth/register", json=body), field)
    refused_login = gateway.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert refused_login.status_code == 401
    clean = {"name": "Mallory", "email": email, "password": PASSWORD}
    created = gateway.post("/auth/register", json=clean)
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "USER"
    me = gateway.get("/auth/me", headers=login(gateway, email, PASSWORD).headers)
    assert me.json()["role"] == "USER"


PRODUCT_FIELDS = [
    pytest.param("owner_id", FOREIGN_ID, id="owner_id"),
    pytest.param("id", FOREIGN_ID, id="id"),
    pytest.param("version", 99, id="version"),
    pytest.param("created_at", PAST, id="created_at"),
    pytest.param("updated_at", PAST, id="updated_at"),
]


@pytest.mark.parametrize(("field", "value"), PRODUCT_FIELDS)
def test_mass_assignment_on_product_create_is_refused_and_creates_nothing(
    gateway: httpx.Client, field: str, value: Any
) -> None:
    account, tokens = new_user(gateway)
    body = {"name": "Planted", "price": 1, field: value}
    assert_refused_field(gateway.post("/products", headers=tokens.headers, json=body), field)
    for owner in (account.id, FOREIGN_ID):
        listed = gateway.get("/products", params={"owner_id": owner})
        assert listed.status_code == 200
        assert listed.json()["items"] == []
    assert gateway.get(f"/products/{FOREIGN_ID}").status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(("field", "value"), PRODUCT_FIELDS)
def test_mass_assignment_on_product_update_is_refused_and_changes_nothing(
    gateway: httpx.Client, method: str, field: str, value: Any
) -> None:
    _, tokens = new_user(gateway)
    product = create_product(gateway, tokens)
    body = {"name": "Renamed", "price": 2, field: value}
    url = f"/products/{product['id']}"
    assert_refused_field(gateway.request(method, url, headers=tokens.headers, json=body), field)
    assert gateway.get(url).json() == product


def test_mass_assignment_on_role_change_is_refused(gateway: httpx.Client) -> None:
    account, _ = new_user(gateway)
    admin = admin_tokens(gateway)
    response = gateway.patch(
        f"/auth/users/{account.id}",
        headers=admin.headers,
        json={"role": "ADMIN", "email": "planted@example.com"},
    )
    assert_refused_field(response, "email")
    me = gateway.get("/auth/me", headers=login(gateway, account.email, PASSWORD).headers)
    assert me.json()["email"] == account.email
    assert me.json()["role"] == "USER"


def test_excessive_data_exposure_user_responses_hold_no_secret(gateway: httpx.Client) -> None:
    account, tokens = new_user(gateway)
    admin = admin_tokens(gateway)
    user_keys = {"id", "name", "email", "role", "created_at"}
    me = gateway.get("/auth/me", headers=tokens.headers).json()
    page = gateway.get("/auth/users", headers=admin.headers, params={"limit": 100}).json()
    role = gateway.patch(
        f"/auth/users/{account.id}", headers=admin.headers, json={"role": "USER"}
    ).json()
    for user in (me, role, *page["items"]):
        assert set(user) == user_keys, user
    for text in (str(me), str(page), str(role)):
        assert "$2b$" not in text
        assert PASSWORD not in text
