"""Requests that did not come through the gateway are refused, whatever they carry."""

import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_common.credential import CREDENTIAL_HEADER

pytestmark = pytest.mark.anyio

ROUTES = [
    pytest.param("POST", "/auth/register", id="register"),
    pytest.param("POST", "/auth/login", id="login"),
    pytest.param("POST", "/auth/refresh", id="refresh"),
    pytest.param("POST", "/auth/logout", id="logout"),
    pytest.param("GET", "/auth/me", id="me"),
    pytest.param("GET", "/auth/users", id="users"),
    pytest.param("PATCH", "/auth/users/00000000-0000-0000-0000-000000000000", id="patch user"),
    pytest.param("GET", "/auth/jwks.json", id="jwks"),
    pytest.param("GET", "/internal/revocations", id="revocations"),
]


RID = "rid-1"
JWKS = {CREDENTIAL_HEADER: "", "x-request-id": RID}


def credential(key: Ed25519PrivateKey, **overrides: Any) -> str:
    """A credential for `GET /auth/jwks.json` with X-Request-ID rid-1, unless overridden."""
    now = int(time.time())
    claims = {
        "iss": "api-gateway",
        "aud": "auth-service",
        "iat": now,
        "exp": now + 30,
        "jti": uuid.uuid4().hex,
        "rid": RID,
        "htm": "GET",
        "htu": "/auth/jwks.json",
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="EdDSA")


def jwks_headers(token: str) -> dict[str, str]:
    return {**JWKS, CREDENTIAL_HEADER: token}


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_direct_call_without_credential_returns_401(api, method, path):
    response = await api.direct.request(method, path, json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_direct_call_with_a_valid_user_token_returns_401(api):
    _, tokens = await api.new_user()
    response = await api.direct.get(
        "/auth/me", headers={"authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 401


async def test_a_user_access_token_in_the_credential_header_returns_401(api):
    _, tokens = await api.new_user()
    response = await api.direct.get("/auth/me", headers={CREDENTIAL_HEADER: tokens["access_token"]})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"iat": int(time.time()) - 120, "exp": int(time.time()) - 60}, id="expired"),
        pytest.param({"aud": "product-service"}, id="wrong audience"),
        pytest.param({"iss": "shop-auth"}, id="wrong issuer"),
        pytest.param({"exp": int(time.time()) + 3600}, id="lifetime over 60 s"),
        pytest.param({"exp": None}, id="no expiry"),
        pytest.param({"htm": "POST"}, id="another method"),
        pytest.param({"htu": "/auth/me"}, id="another path"),
        pytest.param({"rid": "rid-2"}, id="another request id"),
        pytest.param({"iss": "product-service"}, id="a service as issuer"),
    ],
)
async def test_a_bad_gateway_credential_returns_401(api, overrides):
    token = credential(api.gateway.private_key, **overrides)
    response = await api.direct.get("/auth/jwks.json", headers=jwks_headers(token))
    assert response.status_code == 401


async def test_a_credential_signed_by_another_key_returns_401(api):
    token = credential(Ed25519PrivateKey.generate())
    response = await api.direct.get("/auth/jwks.json", headers=jwks_headers(token))
    assert response.status_code == 401


async def test_an_unsigned_credential_returns_401(api):
    now = int(time.time())
    token = jwt.encode(
        {"iss": "api-gateway", "aud": "auth-service", "iat": now, "exp": now + 30},
        None,  # type: ignore[arg-type]
        algorithm="none",
    )
    response = await api.direct.get("/auth/jwks.json", headers=jwks_headers(token))
    assert response.status_code == 401


async def test_a_valid_credential_is_let_through(api):
    response = await api.direct.get(
        "/auth/jwks.json", headers=jwks_headers(credential(api.gateway.private_key))
    )
    assert response.status_code == 200


async def test_a_credential_is_good_for_its_one_request_only(api):
    """Captured from a GET, it authorises neither a PATCH, nor another path, nor itself again."""
    token = credential(api.gateway.private_key)
    patch = await api.direct.patch("/auth/jwks.json", headers=jwks_headers(token))
    assert patch.status_code == 401
    me = await api.direct.get("/auth/me", headers=jwks_headers(token))
    assert me.status_code == 401
    first = await api.direct.get("/auth/jwks.json", headers=jwks_headers(token))
    assert first.status_code == 200
    again = await api.direct.get("/auth/jwks.json", headers=jwks_headers(token))
    assert again.status_code == 401


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
async def test_operations_endpoints_need_no_credential(api, path):
    assert (await api.direct.get(path)).status_code == 200
