"""The gateway serves the API docs: the document from the services, the Swagger UI page."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import jwt
import orjson
import pytest

from api_gateway.policy import Service

from ..unit.test_openapi import service_documents

pytestmark = pytest.mark.anyio


class DocumentServer:
    """A service that publishes an OpenAPI document and records who asked for it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.credentials: list[dict[str, Any]] = []
        self.status = 200

    async def __call__(self, scope: dict[str, Any], _receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        credential = headers.get(b"x-gateway-credential", b"").decode()
        if credential:
            self.credentials.append(jwt.decode(credential, options={"verify_signature": False}))
        body = orjson.dumps(self.document) if scope["path"] == "/openapi.json" else b"{}"
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def test_the_document_is_built_from_what_each_service_publishes(
    make_settings, open_gateway, serve_app
) -> None:
    documents = service_documents()
    auth = DocumentServer(documents[Service.AUTH.value])
    product = DocumentServer(documents[Service.PRODUCT.value])
    order = DocumentServer(documents[Service.ORDER.value])
    async with (
        serve_app(auth) as auth_url,
        serve_app(product) as product_url,
        serve_app(order) as order_url,
    ):
        settings = make_settings(
            auth_service_url=auth_url, product_service_url=product_url, order_service_url=order_url
        )
        async with open_gateway(settings) as client:
            response = await client.get("/api-docs/openapi.json")
            again = await client.get("/api-docs/openapi.json")
            head = await client.head("/api-docs/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert (
        response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    assert response.headers["x-request-id"]
    document = response.json()
    assert document["openapi"] == "3.1.0" and "/products/{id}" in document["paths"]
    assert again.content == response.content and head.content == b""
    for server, audience in (
        (auth, "auth-service"),
        (product, "product-service"),
        (order, "order-service"),
    ):
        fetches = server.credentials
        assert fetches, audience
        assert all(
            claims["aud"] == audience and claims["iss"] == "api-gateway" for claims in fetches
        )
        assert all("sub" not in claims for claims in fetches)  # nobody's identity


async def test_without_the_services_documents_it_is_503_until_they_answer(
    make_settings, open_gateway, serve_app
) -> None:
    documents = service_documents()
    auth = DocumentServer(documents[Service.AUTH.value])
    product = DocumentServer(documents[Service.PRODUCT.value])
    order = DocumentServer(documents[Service.ORDER.value])
    product.status = 503
    async with (
        serve_app(auth) as auth_url,
        serve_app(product) as product_url,
        serve_app(order) as order_url,
    ):
        settings = make_settings(
            auth_service_url=auth_url, product_service_url=product_url, order_service_url=order_url
        )
        async with open_gateway(settings) as client:
            refused = await client.get("/api-docs/openapi.json")
            product.status = 200
            retried = None
            for _ in range(30):
                retried = await client.get("/api-docs/openapi.json")
                if retried.status_code == 200:
                    break
                await asyncio.sleep(0.1)
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    assert retried is not None and retried.status_code == 200


async def test_swagger_ui_is_served_with_its_own_policy_and_assets(client) -> None:
    page = await client.get("/api-docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    loaded = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
    assert {url.rsplit("/", 1)[1] for url in loaded} == {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    }
    for url in loaded:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-security-policy"] != policy


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("POST", "/api-docs", 405, id="post-page"),
        pytest.param("DELETE", "/api-docs/openapi.json", 405, id="delete-document"),
        pytest.param("GET", "/api-docs/", 404, id="trailing-slash"),
        pytest.param("GET", "/api-docs/static/", 404, id="static-folder"),
        pytest.param("GET", "/api-docs/static/index.html", 404, id="unlisted-asset"),
        pytest.param("GET", "/API-DOCS", 404, id="other-case"),
    ],
)
async def test_only_the_listed_docs_paths_exist(
    client, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    if status == 405:
        assert response.headers["allow"] == "GET, HEAD"
