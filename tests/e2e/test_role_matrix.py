"""Who may do what to a product, through the gateway, for every method."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.e2e.test_original_flow import admin_headers, register_and_login
from testsupport.system import System

pytestmark = pytest.mark.e2e

ANONYMOUS, OWNER, OTHER, ADMIN = "anonymous", "owner", "other-user", "admin"
# (method, actor) -> expected status; reads are public, writes need a token,
# updates need ownership or ADMIN, deletes need ADMIN.
MATRIX = {
    ("GET", ANONYMOUS): 200,
    ("GET", OWNER): 200,
    ("GET", OTHER): 200,
    ("GET", ADMIN): 200,
    ("POST", ANONYMOUS): 401,
    ("POST", OWNER): 201,
    ("POST", OTHER): 201,
    ("POST", ADMIN): 201,
    ("PUT", ANONYMOUS): 401,
    ("PUT", OWNER): 200,
    ("PUT", OTHER): 403,
    ("PUT", ADMIN): 200,
    ("PATCH", ANONYMOUS): 401,
    ("PATCH", OWNER): 200,
    ("PATCH", OTHER): 403,
    ("PATCH", ADMIN): 200,
    ("DELETE", ANONYMOUS): 401,
    ("DELETE", OWNER): 403,
    ("DELETE", OTHER): 403,
    ("DELETE", ADMIN): 204,
}


@pytest.fixture(scope="module")
def actors(system: System) -> dict[str, dict[str, str]]:
    with httpx.Client(base_url=system.gateway, timeout=15) as client:
        return {
            ANONYMOUS: {},
            OWNER: register_and_login(client)[0],
            OTHER: register_and_login(client)[0],
            ADMIN: admin_headers(client),
        }


@pytest.mark.parametrize(
    ("method", "actor", "expected"),
    [pytest.param(m, a, s, id=f"{m}-{a}") for (m, a), s in MATRIX.items()],
)
def test_role_matrix(
    gateway: httpx.Client,
    actors: dict[str, dict[str, str]],
    method: str,
    actor: str,
    expected: int,
) -> None:
    created = gateway.post(
        "/products",
        headers=actors[OWNER],
        json={"name": f"Item {secrets.token_hex(3)}", "price": 5},
    )
    assert created.status_code == 201
    url = f"/products/{created.json()['id']}"
    body = {"name": "Renamed", "price": 6} if method in ("POST", "PUT") else {"price": 7}
    target = "/products" if method == "POST" else url
    response = gateway.request(
        method,
        target,
        headers=actors[actor],
        json=body if method in ("POST", "PUT", "PATCH") else None,
    )
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        after = gateway.get(url).json()
        assert after["version"] == created.json()["version"]
    if expected == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
