"""Who may touch what: another user's objects (API1) and admin-only functions (API5)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.security.support import Tokens, admin_tokens, create_product, new_user

pytestmark = pytest.mark.e2e


def unchanged(gateway: httpx.Client, product: dict[str, Any]) -> None:
    now = gateway.get(f"/products/{product['id']}")
    assert now.status_code == 200
    assert now.json() == product


@pytest.mark.parametrize(
    ("method", "body"),
    [
        pytest.param("PUT", {"name": "Pwned", "price": 0}, id="PUT"),
        pytest.param("PATCH", {"price": 0}, id="PATCH"),
        pytest.param("PATCH", {"name": "Pwned"}, id="PATCH-name"),
    ],
)
@pytest.mark.parametrize("if_match", [None, "*"], ids=["no-if-match", "if-match-star"])
def test_bola_another_users_product_cannot_be_updated(
    gateway: httpx.Client, method: str, body: dict[str, Any], if_match: str | None
) -> None:
    _, owner = new_user(gateway)
    _, attacker = new_user(gateway)
    product = create_product(gateway, owner, stock=3)
    headers = attacker.headers | ({"If-Match": if_match} if if_match else {})
    response = gateway.request(method, f"/products/{product['id']}", headers=headers, json=body)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    unchanged(gateway, product)


def test_bola_the_owner_and_an_admin_may_update_as_the_control(gateway: httpx.Client) -> None:
    _, owner = new_user(gateway)
    product = create_product(gateway, owner)
    url = f"/products/{product['id']}"
    assert gateway.patch(url, headers=owner.headers, json={"price": 11}).status_code == 200
    admin = admin_tokens(gateway)
    assert gateway.patch(url, headers=admin.headers, json={"price": 12}).status_code == 200


@pytest.mark.parametrize("whose", ["own", "another-users"])
def test_user_delete_is_forbidden_even_for_their_own_product(
    gateway: httpx.Client, whose: str
) -> None:
    _, owner = new_user(gateway)
    attacker: Tokens = owner if whose == "own" else new_user(gateway)[1]
    product = create_product(gateway, owner)
    response = gateway.delete(f"/products/{product['id']}", headers=attacker.headers)
    assert response.status_code == 403, response.text
    unchanged(gateway, product)


def test_anonymous_writes_are_refused(gateway: httpx.Client) -> None:
    _, owner = new_user(gateway)
    product = create_product(gateway, owner)
    url = f"/products/{product['id']}"
    for method, target, body in [
        ("POST", "/products", {"name": "Free", "price": 1}),
        ("PUT", url, {"name": "Free", "price": 1}),
        ("PATCH", url, {"price": 1}),
        ("DELETE", url, None),
    ]:
        response = gateway.request(method, target, json=body)
        assert response.status_code == 401, (method, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
    unchanged(gateway, product)


def test_bfla_a_user_cannot_list_users(gateway: httpx.Client) -> None:
    _, user = new_user(gateway)
    response = gateway.get("/auth/users", headers=user.headers)
    assert response.status_code == 403, response.text
    assert "items" not in response.text


def test_bfla_a_user_cannot_promote_themselves_or_demote_an_admin(
    gateway: httpx.Client,
) -> None:
    account, user = new_user(gateway)
    admin = admin_tokens(gateway)
    admin_id = gateway.get("/auth/me", headers=admin.headers).json()["id"]
    promote = gateway.patch(
        f"/auth/users/{account.id}", headers=user.headers, json={"role": "ADMIN"}
    )
    assert promote.status_code == 403, promote.text
    demote = gateway.patch(f"/auth/users/{admin_id}", headers=user.headers, json={"role": "USER"})
    assert demote.status_code == 403, demote.text
    assert gateway.get("/auth/me", headers=user.headers).json()["role"] == "USER"
    assert gateway.get("/auth/me", headers=admin.headers).json()["role"] == "ADMIN"
