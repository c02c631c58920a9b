"""Getting past the gateway: identity headers a client makes up, calls straight to the
services' ports, and internal paths asked for through the gateway (API2, API8, API9).

Some credentials here are minted with the gateway's real private key, read from the
system's data directory: the strongest attacker short of owning the gateway (one who
captured a credential on the internal network, or a compromised service replaying the
credentials it receives).
"""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_common.keys import load_private_key
from tests.security.forgery import parts, sign_eddsa, with_signature
from tests.security.support import (
    Shop,
    admin_tokens,
    assert_unauthorized,
    bearer,
    create_product,
    log_lines,
    new_user,
    register,
)

pytestmark = pytest.mark.e2e


def credential(
    key: Ed25519PrivateKey,
    audience: str,
    *,
    lifetime: int = 30,
    age: int = 0,
    bound_to: tuple[str, str, str] = ("GET", "/products", "rid"),
    **claims: Any,
) -> str:
    """Minted as the gateway does, for the request `bound_to` (method, path, request id)."""
    now = int(time.time()) - age
    method, path, request_id = bound_to
    payload = {
        "iss": "api-gateway",
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "htm": method,
        "htu": path,
        "rid": request_id,
    }
    return jwt.encode({**payload, **claims}, key, algorithm="EdDSA")


def gateway_key(shop: Shop) -> Ed25519PrivateKey:
    return load_private_key(shop.data_dir / "keys" / "gateway" / "private.pem")


def spoofed_headers(shop: Shop, user_id: str, audience: str) -> dict[str, str]:
    return {
        "X-User-Id": user_id,
        "X-User-Role": "ADMIN",
        "X-Role": "ADMIN",
        "X-Forwarded-User": user_id,
        "X-Auth-User": user_id,
        "Remote-User": user_id,
        "X-Gateway-Credential": credential(
            gateway_key(shop), audience, sub=user_id, role="ADMIN", rid="spoofed"
        ),
    }


def test_spoofed_identity_headers_do_not_change_who_the_caller_is(
    shop: Shop, gateway: httpx.Client
) -> None:
    account, user = new_user(gateway)
    victim = register(gateway)
    headers = user.headers | spoofed_headers(shop, victim.id, "auth-service")
    me = gateway.get("/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == account.id
    assert me.json()["role"] == "USER"
    assert gateway.get("/auth/users", headers=headers).status_code == 403


def test_spoofed_identity_headers_do_not_grant_writes(shop: Shop, gateway: httpx.Client) -> None:
    _, owner = new_user(gateway)
    owner_id = gateway.get("/auth/me", headers=owner.headers).json()["id"]
    _, attacker = new_user(gateway)
    product = create_product(gateway, owner)
    url = f"/products/{product['id']}"
    spoofed = spoofed_headers(shop, owner_id, "product-service")
    assert gateway.patch(url, headers=spoofed, json={"price": 0}).status_code == 401
    patched = gateway.patch(url, headers=attacker.headers | spoofed, json={"price": 0})
    assert patched.status_code == 403, patched.text
    assert gateway.delete(url, headers=attacker.headers | spoofed).status_code == 403
    assert gateway.delete(url, headers=spoofed).status_code == 401
    assert gateway.get(url).json() == product


def test_spoofed_identity_headers_do_not_authenticate_a_create(
    shop: Shop, gateway: httpx.Client
) -> None:
    victim = register(gateway)
    spoofed = spoofed_headers(shop, victim.id, "product-service")
    created = gateway.post("/products", headers=spoofed, json={"name": "Mine", "price": 1})
    assert created.status_code == 401, created.text
    assert gateway.get("/products", params={"owner_id": victim.id}).json()["items"] == []


@pytest.fixture(scope="module")
def user_token(shop: Shop) -> str:
    with shop.client() as client:
        return new_user(client)[1].access_token


DIRECT_CALLS = [
    pytest.param("auth", "GET", "/auth/me", None, id="auth-me"),
    pytest.param("auth", "GET", "/auth/users", None, id="auth-users"),
    pytest.param("auth", "GET", "/internal/revocations", None, id="auth-internal"),
    pytest.param("auth", "GET", "/auth/jwks.json", None, id="auth-jwks"),
    pytest.param(
        "auth",
        "POST",
        "/auth/login",
        {"email": "admin@example.com", "password": "admin-password-1"},
        id="auth-login",
    ),
    pytest.param("product", "GET", "/products", None, id="product-list"),
    pytest.param(
        "product", "POST", "/products", {"name": "Direct", "price": 1}, id="product-create"
    ),
    pytest.param(
        "product",
        "PUT",
        f"/stock/reservations/{uuid.uuid4()}",
        {"items": [{"product_id": str(uuid.uuid4()), "quantity": 1}]},
        id="stock-reserve",
    ),
    pytest.param("product", "DELETE", f"/stock/reservations/{uuid.uuid4()}", None, id="stock-free"),
    pytest.param("order", "GET", "/orders", None, id="order-list"),
    pytest.param(
        "order",
        "POST",
        "/orders",
        {"items": [{"product_id": str(uuid.uuid4()), "quantity": 1}]},
        id="order-place",
    ),
]


def _direct(shop: Shop, service: str) -> httpx.Client:
    base = {"auth": shop.system.auth, "product": shop.system.product, "order": shop.system.order}
    return shop.client(base_url=base[service])


@pytest.mark.parametrize(("service", "method", "path", "body"), DIRECT_CALLS)
@pytest.mark.parametrize("with_token", [False, True], ids=["no-token", "valid-user-token"])
def test_direct_calls_to_the_services_are_refused(
    shop: Shop,
    user_token: str,
    service: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    with_token: bool,
) -> None:
    headers = {"Authorization": f"Bearer {user_token}"} if with_token else {}
    with _direct(shop, service) as client:
        response = client.request(method, path, headers=headers, json=body)
    assert response.status_code in (401, 403), response.text
    assert "access_token" not in response.text


def test_direct_calls_change_nothing(shop: Shop, gateway: httpx.Client, user_token: str) -> None:
    me = gateway.get("/auth/me", headers={"Authorization": f"Bearer {user_token}"})
    owner = me.json()["id"]
    with _direct(shop, "product") as client:
        client.post(
            "/products",
            headers={"Authorization": f"Bearer {user_token}"},
            json={"name": "Direct", "price": 1},
        )
    assert gateway.get("/products", params={"owner_id": owner}).json()["items"] == []


def test_direct_calls_are_logged_as_security_events(shop: Shop, user_token: str) -> None:
    for service in ("auth", "product", "order"):
        request_id = f"direct-{uuid.uuid4().hex}"
        with _direct(shop, service) as client:
            headers = {"Authorization": f"Bearer {user_token}", "X-Request-ID": request_id}
            assert client.get("/auth/me", headers=headers).status_code in (401, 403)
        events = [line.get("security_event") for line in log_lines(shop, request_id)]
        assert "direct_call_refused" in events, (service, events)


def _forged_credentials(
    shop: Shop, audience: str, admin_id: str, bound_to: tuple[str, str, str]
) -> dict[str, str]:
    """Each bound to the request it is sent with: refused for its own fault only."""
    real = gateway_key(shop)
    other = "product-service" if audience == "auth-service" else "auth-service"
    admin: dict[str, Any] = {"sub": admin_id, "role": "ADMIN", "bound_to": bound_to}
    return {
        "attackers-own-key": credential(Ed25519PrivateKey.generate(), audience, **admin),
        "other-services-credential": credential(real, other, **admin),
        "expired": credential(real, audience, age=120, **admin),
        "lifetime-over-60-s": credential(real, audience, lifetime=3600, **admin),
        "wrong-issuer": credential(real, audience, iss="auth-service", **admin),
        "a-service-as-issuer": credential(real, audience, iss="order-service", **admin),
        "alg-none": with_signature(
            {"alg": "none", "typ": "JWT"},
            jwt.decode(credential(real, audience, **admin), options={"verify_signature": False}),
            "",
        ),
    }


FORGERIES = [
    "attackers-own-key",
    "other-services-credential",
    "expired",
    "lifetime-over-60-s",
    "wrong-issuer",
    "a-service-as-issuer",
    "alg-none",
]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_direct_calls_with_a_forged_gateway_credential_are_refused(
    shop: Shop, gateway: httpx.Client, forgery: str
) -> None:
    admin = admin_tokens(gateway)
    admin_id = gateway.get("/auth/me", headers=admin.headers).json()["id"]
    product = create_product(gateway, admin)
    path = f"/products/{product['id']}"
    to_auth = _forged_credentials(shop, "auth-service", admin_id, ("GET", "/auth/users", "r1"))
    to_product = _forged_credentials(shop, "product-service", admin_id, ("DELETE", path, "r2"))
    with _direct(shop, "auth") as client:
        users = client.get(
            "/auth/users", headers={"X-Gateway-Credential": to_auth[forgery], "X-Request-ID": "r1"}
        )
        assert users.status_code in (401, 403), users.text
    with _direct(shop, "product") as client:
        deleted = client.delete(
            path, headers={"X-Gateway-Credential": to_product[forgery], "X-Request-ID": "r2"}
        )
        assert deleted.status_code in (401, 403), deleted.text
    assert gateway.get(f"/products/{product['id']}").status_code == 200


def test_control_a_credential_minted_with_the_gateways_key_is_accepted(shop: Shop) -> None:
    """Shows the forgeries above fail for their fault, not for a mistake of the test."""
    request_id = str(uuid.uuid4())
    fine = credential(
        gateway_key(shop), "product-service", bound_to=("GET", "/products", request_id)
    )
    with _direct(shop, "product") as client:
        headers = {"X-Gateway-Credential": fine, "X-Request-ID": request_id}
        assert client.get("/products", headers=headers).status_code == 200


def test_a_credential_captured_from_one_request_authorises_no_other(
    shop: Shop, gateway: httpx.Client
) -> None:
    """The contract: a credential is bound to its request's method, path and request id,
    and each is accepted once. A real admin's, captured from a GET, gets nothing else."""
    admin = admin_tokens(gateway)
    admin_id = gateway.get("/auth/me", headers=admin.headers).json()["id"]
    product = create_product(gateway, admin)
    path = f"/products/{product['id']}"
    request_id = str(uuid.uuid4())
    captured = credential(
        gateway_key(shop),
        "product-service",
        sub=admin_id,
        role="ADMIN",
        bound_to=("GET", path, request_id),
    )
    headers = {"X-Gateway-Credential": captured, "X-Request-ID": request_id}
    with _direct(shop, "product") as client:
        patched = client.patch(
            path, headers={**headers, "If-Match": "*"}, json={"name": "Captured"}
        )
        deleted = client.delete(path, headers=headers)
        other_list = client.get("/products", headers=headers)
        other_id = client.get(path, headers={**headers, "X-Request-ID": "another-id"})
        assert (patched.status_code, deleted.status_code) == (401, 401)
        assert (other_list.status_code, other_id.status_code) == (401, 401)
        assert client.get(path, headers=headers).status_code == 200  # its own request, once
        assert client.get(path, headers=headers).status_code == 401  # and never again
    assert gateway.get(path).json()["name"] == product["name"]


@pytest.mark.parametrize(
    "path",
    [
        "/internal/revocations",
        "/auth/../internal/revocations",
        "/auth/%2e%2e/internal/revocations",
        "/products/..%2finternal%2frevocations",
        "/docs",
        "/openapi.json",
        "/auth/docs",
        "/products/",
        "//products",
        "/PRODUCTS",
    ],
)
def test_internal_and_unlisted_paths_are_not_reachable_through_the_gateway(
    gateway: httpx.Client, path: str
) -> None:
    admin = admin_tokens(gateway)
    raw = httpx.URL(gateway.base_url.copy_with(raw_path=path.encode()))
    response = gateway.get(raw, headers=admin.headers)
    assert response.status_code == 404, (path, response.text)
    assert "revoked_sessions" not in response.text


def test_ssrf_urls_in_tokens_and_host_headers_are_never_fetched(gateway: httpx.Client) -> None:
    """Nothing a client sends picks a host the gateway talks to: the upstreams and the
    JWKS come from settings, never from a token's jku/x5u/kid or the Host header."""
    _, tokens = new_user(gateway)
    _, claims, _ = parts(tokens.access_token)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(1.5)
        here = f"127.0.0.1:{listener.getsockname()[1]}"
        url = f"http://{here}/jwks.json"
        header = {"alg": "EdDSA", "kid": url, "jku": url, "x5u": url}
        token = sign_eddsa(header, claims, Ed25519PrivateKey.generate())
        assert_unauthorized(gateway.get("/auth/me", headers=bearer(token)))
        for name in ("Host", "X-Forwarded-Host", "X-Original-URL", "X-Rewrite-URL"):
            listed = gateway.get("/products?limit=1", headers={name: here})
            assert listed.status_code == 200, (name, listed.text)
            assert set(listed.json()) == {"items", "next_cursor"}
        with pytest.raises(TimeoutError):
            listener.accept()
