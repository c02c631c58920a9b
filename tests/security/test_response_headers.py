"""Security misconfiguration (API8): the headers every gateway response carries, no
server banner, no CORS unless configured, and tokens that no cache may keep."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.security.support import create_product, new_user

pytestmark = pytest.mark.e2e

EVIL_ORIGIN = "https://evil.example"


def responses_of_every_kind(gateway: httpx.Client) -> dict[str, httpx.Response]:
    account, tokens = new_user(gateway)
    product = create_product(gateway, tokens)
    return {
        "health": gateway.get("/health"),
        "ready": gateway.get("/ready"),
        "list": gateway.get("/products"),
        "created": gateway.post(
            "/products", headers=tokens.headers, json={"name": "a", "price": 1}
        ),
        "no-content": gateway.post("/auth/logout", json={"refresh_token": "unknown"}),
        "not-found": gateway.get("/nowhere"),
        "method-not-allowed": gateway.delete("/products"),
        "unauthorized": gateway.get("/auth/me"),
        "forbidden": gateway.delete(f"/products/{product['id']}", headers=tokens.headers),
        "invalid": gateway.post("/products", headers=tokens.headers, json={"name": ""}),
        "me": gateway.get("/auth/me", headers=tokens.headers),
        "head": gateway.head(f"/products/{product['id']}"),
        "jwks": gateway.get("/auth/jwks.json"),
        "api-docs": gateway.get("/api-docs"),
        "openapi": gateway.get("/api-docs/openapi.json"),
        "login": gateway.post(
            "/auth/login", json={"email": account.email, "password": account.password}
        ),
    }


def test_security_headers_are_on_every_gateway_response(gateway: httpx.Client) -> None:
    for kind, response in responses_of_every_kind(gateway).items():
        headers = response.headers
        assert headers.get("x-content-type-options") == "nosniff", kind
        assert headers.get("referrer-policy"), kind
        assert headers.get("content-security-policy"), kind
        assert headers.get("x-request-id"), kind
        assert "x-powered-by" not in headers, kind
        server = headers.get("server", "")
        assert not any(char.isdigit() for char in server), (kind, server)
        assert "uvicorn" not in server.lower(), (kind, server)


def test_a_json_response_may_not_be_framed_or_run_anything(gateway: httpx.Client) -> None:
    policy = gateway.get("/products").headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy or "frame-ancestors 'self'" in policy
    assert "unsafe-eval" not in policy
    assert "unsafe-inline" not in policy


def test_the_api_docs_page_loads_nothing_from_elsewhere(gateway: httpx.Client) -> None:
    page = gateway.get("/api-docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    for directive in policy.split(";"):
        sources = directive.split()[1:]
        assert not any(
            "://" in source or source in ("*", "http:", "https:", "'unsafe-eval'")
            for source in sources
        ), directive
    assert "frame-ancestors 'none'" in policy
    for reference in re.findall(r'(?:src|href)="([^"]*)"', page.text):
        assert "//" not in reference, reference


def test_errors_carry_no_stack_trace_or_internals(gateway: httpx.Client) -> None:
    for kind, response in responses_of_every_kind(gateway).items():
        if response.status_code < 400:
            continue
        assert response.headers["content-type"].startswith("application/problem+json"), kind
        text = response.text
        for leak in ("Traceback", 'File "', "sqlalchemy", "asyncpg", "pydantic", "starlette"):
            assert leak not in text, (kind, leak)


def test_cors_grants_no_origin_when_cors_origins_is_empty(gateway: httpx.Client) -> None:
    simple = gateway.get("/products", headers={"Origin": EVIL_ORIGIN})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    assert "access-control-allow-credentials" not in simple.headers
    preflight = gateway.options(
        "/products",
        headers={
            "Origin": EVIL_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-methods" not in preflight.headers
    assert preflight.status_code in (403, 404, 405), preflight.status_code
    null_origin = gateway.get("/auth/jwks.json", headers={"Origin": "null"})
    assert "access-control-allow-origin" not in null_origin.headers


def test_token_responses_may_not_be_cached(gateway: httpx.Client) -> None:
    account, tokens = new_user(gateway)
    login = gateway.post("/auth/login", json={"email": account.email, "password": account.password})
    refreshed = gateway.post("/auth/refresh", json={"refresh_token": tokens.refresh_token})
    for response in (login, refreshed):
        assert response.status_code == 200
        assert "no-store" in response.headers["cache-control"]


@pytest.mark.parametrize("method", ["TRACE", "TRACK", "CONNECT", "PROPFIND"])
def test_unused_methods_are_not_allowed(gateway: httpx.Client, method: str) -> None:
    response = gateway.request(method, "/products")
    assert response.status_code in (400, 405, 501), response.text
    assert "authorization" not in response.text.lower()
