"""Security headers on every gateway response, whoever produced it."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


def assert_secured(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], name
    assert "server" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/health", 200, id="own-endpoint"),
        pytest.param("GET", "/metrics", 200, id="metrics"),
        pytest.param("GET", "/products/p-1", 200, id="proxied"),
        pytest.param("HEAD", "/products/p-1", 200, id="head"),
        pytest.param("GET", "/products?status=500", 500, id="upstream-error"),
        pytest.param("GET", "/nowhere", 404, id="gateway-404"),
        pytest.param("PUT", "/products", 405, id="gateway-405"),
        pytest.param("GET", "/auth/me", 401, id="gateway-401"),
    ],
)
async def test_every_response_carries_the_security_headers(client, method, path, status):
    response = await client.request(method, path)
    assert response.status_code == status
    assert_secured(response)


async def test_a_429_carries_them_too(make_settings, open_gateway) -> None:
    async with open_gateway(make_settings(rate_limit_per_address="1 per minute")) as client:
        await client.get("/products")
        response = await client.get("/products")
    assert response.status_code == 429
    assert_secured(response)


async def test_the_gateways_values_replace_an_upstreams(client) -> None:
    response = await client.get(
        "/products/p-1",
        params=[
            ("header", "x-frame-options:ALLOWALL"),
            ("header", "content-security-policy:default-src *"),
            ("header", "referrer-policy:unsafe-url"),
        ],
    )
    assert_secured(response)


async def test_cache_control_from_the_service_passes_through(client) -> None:
    response = await client.post("/auth/login", params={"header": "cache-control:no-store"})
    assert response.headers["cache-control"] == "no-store"
