"""The gateway's own endpoints, its access log, metrics and CORS."""

from __future__ import annotations

import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.anyio


async def test_health_answers_while_the_process_runs(client) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_ready_names_every_dependency_when_all_answer(client, auth_upstream) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {
        "auth-service": "ok",
        "product-service": "ok",
        "order-service": "ok",
        "auth-keys": "ok",
    }
    assert body["instances"]["auth-service"] == {auth_upstream.url: "ok"}


async def test_ready_stays_200_and_names_an_upstream_that_is_not_ready(
    client, product_upstream
) -> None:
    product_upstream.ready_status = 503
    response = await client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"] == {
        "auth-service": "ok",
        "product-service": "unavailable",
        "order-service": "ok",
        "auth-keys": "ok",
    }
    assert body["instances"]["product-service"] == {product_upstream.url: "not_ready"}


async def test_ready_is_503_until_the_auth_keys_are_loaded(
    make_settings, open_gateway, auth_upstream
) -> None:
    auth_upstream.jwks_status = 503
    async with open_gateway(make_settings(ready_cache_seconds=0)) as client:
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["auth-keys"] == "unavailable"
        auth_upstream.jwks_status = 200
        # A token-bearing request retries the fetch at once while no keys were ever loaded.
        token = jwt.encode(
            {"sub": "u"}, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "k1"}
        )
        await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert (await client.get("/ready")).status_code == 200


async def test_ready_fetches_the_auth_keys_once_auth_answers_without_waiting_for_a_token(
    make_settings, open_gateway, auth_upstream
) -> None:
    auth_upstream.jwks_status = 503
    async with open_gateway(make_settings(ready_cache_seconds=0)) as client:
        assert (await client.get("/ready")).status_code == 503
        auth_upstream.jwks_status = 200
        # The background refetch is a second away; the probe round fetches the keys itself.
        response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["auth-keys"] == "ok"


async def test_ready_is_503_while_auth_never_answered(make_settings, open_gateway, refused_url):
    # No keys were ever loaded: no token could be checked.
    async with open_gateway(make_settings(auth_service_url=refused_url)) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["auth-service"] == "unavailable"
    assert response.json()["checks"]["auth-keys"] == "unavailable"


async def test_a_service_with_no_ready_instance_costs_its_routes_only(
    make_settings, open_gateway, product_upstream, refused_url
) -> None:
    settings = make_settings(product_service_url=refused_url, ready_cache_seconds=0)
    async with open_gateway(settings) as client:
        ready = await client.get("/ready")
        product = await client.get(f"/products/{uuid.uuid4()}")
        health = await client.get("/health")
    assert ready.status_code == 200
    assert ready.json()["checks"]["product-service"] == "unavailable"
    assert product.status_code == 503
    assert product.headers["content-type"] == "application/problem+json"
    assert health.status_code == 200


async def test_one_ready_instance_of_each_upstream_is_enough(
    make_settings, open_gateway, product_upstream, refused_url
) -> None:
    settings = make_settings(product_service_url=f"{refused_url},{product_upstream.url}")
    async with open_gateway(settings) as client:
        response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["product-service"] == "degraded"


async def test_ready_probes_are_cached_briefly(make_settings, open_gateway, product_upstream):
    async with open_gateway(make_settings(ready_cache_seconds=60)) as client:
        for _ in range(5):
            assert (await client.get("/ready")).status_code == 200
    assert sum(r.path == "/ready" for r in product_upstream.requests) == 1


async def test_each_request_writes_one_access_log_line(
    client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="access"):
        await client.get(f"/products/{uuid.uuid4()}", headers={"x-request-id": "log-me"})
    (line,) = [r for r in caplog.records if r.name == "access"]
    fields = line.__dict__
    assert fields["method"] == "GET"
    assert fields["route"] == "/products/{id}"
    assert fields["status"] == 200
    assert fields["duration_ms"] >= 0
    assert fields["user_id"] is None
    assert "authorization" not in line.getMessage().lower()


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_metrics_label_requests_by_route_template(client) -> None:
    before = samples((await client.get("/metrics")).text, "http_requests_total")
    for _ in range(1000):
        await client.get(f"/products/{uuid.uuid4()}")
    await client.get("/no/such/path")
    await client.request("BREW", "/products")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text, "http_requests_total")
    new_series = set(after) - set(before)
    # Other services' tests share this process's registry (product-service labels its
    # requests `/products/{id}` too): look only at what moved here.
    moved = [s for s in after if after[s] != before.get(s)]
    item_series = [s for s in moved if ("route", "/products/{id}") in s]
    assert len(item_series) == 1  # 1,000 ids, one series
    key = (("method", "GET"), ("route", "/products/{id}"), ("status", "200"))
    assert after[key] - before.get(key, 0) == 1000
    assert all(
        not dict(s)["route"].startswith("/products/") or dict(s)["route"] == "/products/{id}"
        for s in moved
    )
    assert (("method", "OTHER"), ("route", "/products"), ("status", "405")) in after
    assert any(dict(s)["route"] == "<unmatched>" for s in after)
    assert len(new_series) <= 4


async def test_metrics_count_upstream_errors(make_settings, open_gateway, refused_url) -> None:
    async with open_gateway(make_settings(product_service_url=refused_url)) as client:
        await client.get("/products")
        text = (await client.get("/metrics")).text
    errors = samples(text, "gateway_upstream_errors_total")
    assert errors[(("kind", "connect"), ("upstream", "product-service"))] >= 1


async def test_cors_is_off_without_origins(client) -> None:
    response = await client.get("/products", headers={"Origin": "https://shop.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = await client.options(
        "/products",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 405


async def test_cors_allows_listed_origins_only(make_settings, open_gateway) -> None:
    settings = make_settings(cors_origins=("https://shop.example",))
    async with open_gateway(settings) as client:
        allowed = await client.get("/products", headers={"Origin": "https://shop.example"})
        other = await client.get("/products", headers={"Origin": "https://evil.example"})
        error = await client.get("/nowhere", headers={"Origin": "https://shop.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in other.headers
    assert error.headers["access-control-allow-origin"] == "https://shop.example"


async def test_the_gateway_answers_preflights_for_allowed_origins(
    make_settings, open_gateway, product_upstream
) -> None:
    settings = make_settings(cors_origins=("https://shop.example",))
    async with open_gateway(settings) as client:
        response = await client.options(
            f"/products/{uuid.uuid4()}",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization, content-type, if-match",
            },
        )
        unknown = await client.options(
            "/nowhere",
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"},
        )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert response.headers["access-control-allow-methods"] == "DELETE, GET, HEAD, PATCH, PUT"
    assert response.headers["access-control-allow-headers"] == (
        "authorization, content-type, if-match"
    )
    assert unknown.status_code == 404
    assert product_upstream.forwarded == []


async def test_any_origin_when_configured_with_a_star(make_settings, open_gateway) -> None:
    async with open_gateway(make_settings(cors_origins=("*",))) as client:
        response = await client.get("/health", headers={"Origin": "https://anywhere.example"})
    assert response.headers["access-control-allow-origin"] == "*"
