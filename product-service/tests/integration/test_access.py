"""Who may call what, checked again in the service behind the gateway (defence in depth)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

from product_service.config import SERVICE_NAME
from shop_common.credential import CREDENTIAL_HEADER, CredentialSigner
from testsupport.product import CallerAuth, Shop

pytestmark = pytest.mark.anyio

# role -> (list, get, post, put, patch, delete)
MATRIX = {
    "anonymous": (200, 200, 401, 401, 401, 401),
    "owner": (200, 200, 201, 200, 200, 403),
    "other-user": (200, 200, 201, 403, 403, 403),
    "admin": (200, 200, 201, 200, 200, 204),
}


def headers_for(shop: Shop, role: str, owner_id: str) -> dict[str, str]:
    if role == "anonymous":
        return shop.anonymous()
    if role == "owner":
        return shop.as_user(owner_id)
    if role == "admin":
        return shop.as_admin()
    return shop.as_user()


@pytest.mark.parametrize("role", list(MATRIX))
async def test_role_matrix(shop: Shop, role: str) -> None:
    owner_id = str(uuid.uuid4())
    product = await shop.create(shop.as_user(owner_id))
    url = f"/products/{product['id']}"
    headers = headers_for(shop, role, owner_id)
    body = {"name": "Renamed", "price": 3}
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/products", None),
        ("GET", url, None),
        ("POST", "/products", body),
        ("PUT", url, body),
        ("PATCH", url, {"stock": 4}),
        ("DELETE", url, None),
    ]
    statuses = []
    for method, path, json in calls:
        response = await shop.client.request(method, path, json=json, headers=headers)
        statuses.append(response.status_code)
    assert tuple(statuses) == MATRIX[role]


async def test_anonymous_writes_get_401_with_www_authenticate(shop: Shop) -> None:
    response = await shop.client.post(
        "/products", json={"name": "x", "price": 1}, headers=shop.anonymous()
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_user_cannot_delete_even_their_own_product(shop: Shop) -> None:
    owner = shop.as_user()
    product = await shop.create(owner)
    response = await shop.client.delete(f"/products/{product['id']}", headers=owner)
    assert response.status_code == 403
    still = await shop.client.get(f"/products/{product['id']}", headers=owner)
    assert still.status_code == 200


async def test_a_non_owner_gets_403_and_nothing_changes(shop: Shop) -> None:
    product = await shop.create(shop.as_user())
    for method in ("PUT", "PATCH"):
        response = await shop.client.request(
            method,
            f"/products/{product['id']}",
            json={"name": "Mine now", "price": 1},
            headers=shop.as_user(),
        )
        assert response.status_code == 403
        assert "owner" in response.json()["detail"]
    current = await shop.client.get(f"/products/{product['id']}", headers=shop.anonymous())
    assert current.json() == product


def mint(shop: Shop, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": "api-gateway",
        "aud": SERVICE_NAME,
        "iat": now,
        "exp": now + 30,
        "sub": str(uuid.uuid4()),
        "role": "ADMIN",
        "rid": "test",
        **overrides,
    }
    claims = {key: value for key, value in claims.items() if value is not None}
    return jwt.encode(claims, shop.keys.private_key, algorithm="EdDSA")


def credential(shop: Shop, kind: str) -> str | None:
    now = int(time.time())
    if kind == "none":
        return None
    if kind == "expired":
        return mint(shop, iat=now - 120, exp=now - 90)
    if kind == "wrong-audience":
        return mint(shop, aud="auth-service")
    if kind == "wrong-issuer":
        return mint(shop, iss="shop-auth")
    if kind == "too-long-lived":
        return mint(shop, exp=now + 3600)
    if kind == "bad-signature":
        return mint(shop)[:-4] + "AAAA"
    if kind == "hmac":
        claims = {"iss": "api-gateway", "aud": SERVICE_NAME, "iat": now, "exp": now + 30}
        return jwt.encode(claims, "secret-secret-secret-secret-secret", algorithm="HS256")
    return "not-a-jwt"


@pytest.mark.parametrize(
    "kind",
    [
        "none",
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "too-long-lived",
        "bad-signature",
        "hmac",
        "garbage",
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/products", id="list"),
        pytest.param("POST", "/products", id="create"),
        pytest.param("DELETE", f"/products/{uuid.uuid4()}", id="delete"),
    ],
)
async def test_a_direct_call_without_a_valid_gateway_credential_gets_401(
    shop: Shop, kind: str, method: str, path: str
) -> None:
    token = credential(shop, kind)
    headers = {CREDENTIAL_HEADER: token} if token else {}
    # A valid-looking user token is no help: only the gateway's credential counts.
    headers["authorization"] = "Bearer " + mint(shop, aud="shop-api", iss="shop-auth")
    json = {"name": "x", "price": 1} if method == "POST" else None
    response = await shop.client.request(method, path, json=json, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_health_ready_and_metrics_need_no_credential(shop: Shop) -> None:
    for path in ("/health", "/ready", "/metrics"):
        response = await shop.client.get(path)
        assert response.status_code == 200, path
    ready = await shop.client.get("/ready")
    assert ready.json()["checks"] == {"database": "ok"}


async def test_the_openapi_document_describes_the_problem_statuses(shop: Shop) -> None:
    response = await shop.client.get("/openapi.json", headers=shop.anonymous())
    document = response.json()
    patch = document["paths"]["/products/{id}"]["patch"]
    assert {"200", "400", "401", "403", "404", "409", "412", "415", "422"} <= set(
        patch["responses"]
    )
    schemas = document["components"]["schemas"]
    assert schemas["ProductCreate"]["properties"]["price"]["type"] == "number"
    assert schemas["ProductPublic"]["properties"]["price"]["type"] == "number"
    update = schemas["ProductUpdate"]["properties"]
    assert update["name"]["type"] == "string" and "anyOf" not in update["name"]
    assert {"type": "null"} in update["sku"]["anyOf"]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("role", ["anonymous", "owner", "admin"])
async def test_stock_reservations_refuse_the_gateways_credential_with_403(
    shop: Shop, method: str, role: str
) -> None:
    owner_id = str(uuid.uuid4())
    product = await shop.create(shop.as_user(owner_id))
    order_id = str(uuid.uuid4())
    body = {"items": [{"product_id": product["id"], "quantity": 1}]} if method == "PUT" else None
    response = await shop.client.request(
        method,
        f"/stock/reservations/{order_id}",
        json=body,
        headers=headers_for(shop, role, owner_id),
    )
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    after = await shop.client.get(f"/products/{product['id']}", headers=shop.anonymous())
    assert after.json() == product


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_stock_reservations_refuse_a_user_token_without_a_credential_with_401(
    shop: Shop, method: str
) -> None:
    headers = {"authorization": "Bearer " + mint(shop, aud="shop-api", iss="shop-auth")}
    body = {"items": [{"product_id": str(uuid.uuid4()), "quantity": 1}]}
    response = await shop.client.request(
        method,
        f"/stock/reservations/{uuid.uuid4()}",
        json=body if method == "PUT" else None,
        headers=headers,
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/products", id="list"),
        pytest.param("POST", "/products", id="create"),
    ],
)
async def test_order_services_credential_opens_no_product_route(
    shop: Shop, order_service_keys: CredentialSigner, method: str, path: str
) -> None:
    json = {"name": "x", "price": 1} if method == "POST" else None
    response = await shop.client.request(
        method, path, json=json, auth=CallerAuth(order_service_keys)
    )
    assert response.status_code == 403
