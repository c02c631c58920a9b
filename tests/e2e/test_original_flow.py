"""The original's whole flow through the gateway, against three real processes."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from testsupport.system import ADMIN_EMAIL, ADMIN_PASSWORD, System

pytestmark = pytest.mark.e2e


def register_and_login(gateway: httpx.Client) -> tuple[dict[str, str], dict[str, Any]]:
    email = f"user-{secrets.token_hex(6)}@example.com"
    created = gateway.post(
        "/auth/register", json={"name": "Ada", "email": email, "password": "correct horse"}
    )
    assert created.status_code == 201, created.text
    login = gateway.post("/auth/login", json={"email": email, "password": "correct horse"})
    assert login.status_code == 200, login.text
    tokens = login.json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}, created.json()


def admin_headers(gateway: httpx.Client) -> dict[str, str]:
    login = gateway.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def test_register_login_create_update_and_admin_delete_through_the_gateway(
    gateway: httpx.Client,
) -> None:
    user, account = register_and_login(gateway)
    me = gateway.get("/auth/me", headers=user)
    assert me.status_code == 200
    assert me.json()["id"] == account["id"]
    assert me.json()["role"] == "USER"

    created = gateway.post(
        "/products", headers=user, json={"name": "Lamp", "price": 19.99, "stock": 3}
    )
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["owner_id"] == account["id"]
    assert product["price"] == 19.99
    assert created.headers["location"] == f"/products/{product['id']}"

    listed = gateway.get("/products", params={"owner_id": account["id"]})
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [product["id"]]

    fetched = gateway.get(f"/products/{product['id']}")
    assert fetched.status_code == 200
    updated = gateway.patch(
        f"/products/{product['id']}",
        headers={**user, "If-Match": fetched.headers["etag"]},
        json={"price": 17.5},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == product["version"] + 1

    assert gateway.delete(f"/products/{product['id']}", headers=user).status_code == 403
    assert gateway.delete(f"/products/{product['id']}").status_code == 401
    admin = admin_headers(gateway)
    assert gateway.delete(f"/products/{product['id']}", headers=admin).status_code == 204
    assert gateway.get(f"/products/{product['id']}").status_code == 404


def test_another_user_cannot_update_a_product_they_do_not_own(gateway: httpx.Client) -> None:
    owner, _ = register_and_login(gateway)
    other, _ = register_and_login(gateway)
    product = gateway.post("/products", headers=owner, json={"name": "Desk", "price": 120})
    assert product.status_code == 201
    url = f"/products/{product.json()['id']}"
    assert gateway.patch(url, headers=other, json={"price": 1}).status_code == 403
    assert gateway.get(url).json()["price"] == 120


def test_registration_cannot_choose_a_role(gateway: httpx.Client) -> None:
    response = gateway.post(
        "/auth/register",
        json={
            "name": "Mallory",
            "email": f"m-{secrets.token_hex(4)}@example.com",
            "password": "long enough password",
            "role": "ADMIN",
        },
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("service", ["auth", "product"])
def test_services_refuse_direct_calls_even_with_a_valid_user_token(
    system: System, gateway: httpx.Client, service: str
) -> None:
    user, _ = register_and_login(gateway)
    base = system.auth if service == "auth" else system.product
    path = "/auth/me" if service == "auth" else "/products"
    for headers in ({}, user):
        direct = httpx.get(f"{base}{path}", headers=headers, timeout=10)
        assert direct.status_code in (401, 403)
    assert httpx.get(f"{base}/health", timeout=10).status_code == 200


def test_every_response_carries_the_request_id_and_logs_name_it_in_each_service(
    system: System, gateway: httpx.Client
) -> None:
    request_id = f"e2e-{secrets.token_hex(8)}"
    response = gateway.get("/products", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    # Each process logs through its own pipe: wait for each one's line, not the first.
    system.wait_for_line(request_id, prefix="[api-gateway]")
    system.wait_for_line(request_id, prefix="[product-service]")


def test_unknown_path_is_404_and_wrong_method_is_405_with_allow(gateway: httpx.Client) -> None:
    assert gateway.get("/nope").status_code == 404
    assert gateway.get("/products/").status_code == 404
    wrong = gateway.delete("/products")
    assert wrong.status_code == 405
    assert "GET" in wrong.headers["allow"]


def test_gateway_health_and_ready(gateway: httpx.Client) -> None:
    assert gateway.get("/health").status_code == 200
    ready = gateway.get("/ready")
    assert ready.status_code == 200
