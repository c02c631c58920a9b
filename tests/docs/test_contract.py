"""The served document and the gateway's routes are the same set, and the document is valid."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from openapi_spec_validator import validate

from api_gateway.openapi import operations
from api_gateway.policy import RULES, Access, PolicyTable
from tests.docs.conftest import Docs

pytestmark = pytest.mark.e2e

OWN = {"/health", "/ready", "/metrics"}
OPERATION_IDS = {
    ("POST", "/auth/register"): "register",
    ("POST", "/auth/login"): "login",
    ("POST", "/auth/refresh"): "refreshTokens",
    ("POST", "/auth/logout"): "logout",
    ("GET", "/auth/me"): "getCurrentUser",
    ("GET", "/auth/users"): "listUsers",
    ("PATCH", "/auth/users/{id}"): "updateUserRole",
    ("GET", "/auth/jwks.json"): "getJwks",
    ("GET", "/products"): "listProducts",
    ("GET", "/products/{id}"): "getProduct",
    ("POST", "/products"): "createProduct",
    ("PUT", "/products/{id}"): "replaceProduct",
    ("PATCH", "/products/{id}"): "updateProduct",
    ("DELETE", "/products/{id}"): "deleteProduct",
    ("POST", "/orders"): "placeOrder",
    ("GET", "/orders"): "listOrders",
    ("GET", "/orders/{id}"): "getOrder",
    ("POST", "/orders/{id}/cancel"): "cancelOrder",
    ("POST", "/orders/{id}/payment"): "recordPayment",
    ("POST", "/orders/{id}/shipment"): "recordShipment",
}


def test_the_served_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
        }
    }


def test_every_policy_route_is_documented_with_the_access_that_is_enforced(
    document: dict[str, Any],
) -> None:
    for rule in RULES:
        op = document["paths"][rule.template][rule.method.lower()]
        assert op["x-access"] == rule.access.value, rule
        needs_token = rule.access is not Access.PUBLIC
        assert (op["security"] == [{"bearerAuth": []}]) is needs_token, rule
        assert op["operationId"] == OPERATION_IDS[(rule.method, rule.template)]
        if rule.method == "GET":
            assert document["paths"][rule.template]["head"]["x-access"] == rule.access.value


def test_every_documented_path_is_routed_and_nothing_else(document: dict[str, Any]) -> None:
    table = PolicyTable()
    documented = set()
    for method, path, _ in operations(document):
        documented.add((method, path))
        if path in OWN:
            assert method in ("GET", "HEAD")
            continue
        concrete = path.replace("{id}", str(uuid.uuid4()))
        resource = table.resolve(concrete)
        assert resource is not None and method in resource.rules, (method, path)
    routed = {(rule.method, rule.template) for rule in RULES}
    routed |= {("HEAD", rule.template) for rule in RULES if rule.method == "GET"}
    routed |= {(method, path) for path in OWN for method in ("GET", "HEAD")}
    assert documented == routed


def test_the_gateway_answers_every_documented_operation(
    docs: Docs, document: dict[str, Any]
) -> None:
    """Anonymous calls: never 405, never the gateway's unknown-path 404, always documented."""
    with docs.client() as client:
        for method, path, op in operations(document):
            concrete = path.replace("{id}", str(uuid.uuid4()))
            body: dict[str, object] | None = {} if method in ("POST", "PUT", "PATCH") else None
            response = client.request(method, concrete, json=body)
            assert str(response.status_code) in op["responses"], (method, path, response.text)
            assert response.status_code != 405, (method, path)
            if response.status_code == 404 and method != "HEAD":
                assert response.json()["detail"] != "No such path.", (method, path)
            assert response.headers["x-request-id"]


def test_operation_ids_are_unique_and_clean(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    assert all(op_id.isidentifier() and op_id[0].islower() for op_id in ids)


def test_only_public_paths_are_documented(document: dict[str, Any]) -> None:
    assert not [path for path in document["paths"] if path.startswith("/internal")]
    text = str(document)
    assert "X-Gateway-Credential" not in text and "x-gateway-credential" not in text


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        pytest.param("/api-docs", "text/html; charset=utf-8", id="page"),
        pytest.param("/api-docs/openapi.json", "application/json", id="document"),
        pytest.param(
            "/api-docs/static/swagger-initializer.js",
            "text/javascript; charset=utf-8",
            id="initializer",
        ),
    ],
)
def test_the_docs_endpoints_answer_get_and_head(docs: Docs, path: str, content_type: str) -> None:
    with docs.client() as client:
        get = client.get(path)
        head = client.head(path)
        post = client.post(path)
    assert get.status_code == 200 and get.headers["content-type"] == content_type
    assert head.status_code == 200 and head.content == b""
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "path",
    ["/api-docs/", "/api-docs/openapi.json/", "/api-docs/static/", "/api-docs/index.html"],
)
def test_other_docs_paths_are_unknown(docs: Docs, path: str) -> None:
    with docs.client() as client:
        assert client.get(path).status_code == 404


def test_the_page_has_its_own_content_security_policy(docs: Docs) -> None:
    with docs.client() as client:
        page = client.get("/api-docs")
        api = client.get("/products")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe" not in policy and "http" not in policy
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
