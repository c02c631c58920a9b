"""The docs endpoints: the document cached and rebuilt, the Swagger UI page and its assets."""

from __future__ import annotations

import asyncio
import re
from collections.abc import MutableMapping
from typing import Any

import orjson
import pytest
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from api_gateway.api_docs import (
    DOCUMENT_PATH,
    PAGE_CSP,
    PAGE_PATH,
    ApiDocs,
    DocsUnavailable,
)
from api_gateway.policy import Service
from api_gateway.responses import Exchange

from .test_openapi import service_documents

pytestmark = pytest.mark.anyio


class Upstreams:
    """Serves the fake service documents; counts fetches; can fail."""

    def __init__(self) -> None:
        self.documents = service_documents()
        self.fetches: list[tuple[Service, bytes]] = []
        self.failing = False

    async def fetch(self, service: Service, target: bytes) -> bytes:
        self.fetches.append((service, target))
        await asyncio.sleep(0)
        if self.failing:
            raise ConnectionRefusedError("down")
        return orjson.dumps(self.documents[service.value])


async def answer(docs: ApiDocs, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    messages: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        messages.append(message)

    await docs.routes()[path](Exchange(send, "test-request"))
    start, body = messages
    return start["status"], dict(start["headers"]), body["body"]


async def test_the_document_is_fetched_once_from_each_service_and_cached() -> None:
    upstreams = Upstreams()
    docs = ApiDocs(upstreams.fetch)
    first, second = await asyncio.gather(docs.document(), docs.document())
    assert first == second
    await docs.document()
    assert sorted(upstreams.fetches) == sorted((service, b"/openapi.json") for service in Service)
    status, headers, body = await answer(docs, DOCUMENT_PATH)
    assert status == 200 and headers[b"content-type"] == b"application/json"
    assert orjson.loads(body)["openapi"] == "3.1.0"


async def test_a_failed_fetch_is_503_and_retried_on_a_later_request() -> None:
    upstreams = Upstreams()
    upstreams.failing = True
    docs = ApiDocs(upstreams.fetch, retry_seconds=3600)
    with pytest.raises(DocsUnavailable) as refused:
        await docs.document()
    assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "1"}
    fetched = len(upstreams.fetches)
    with pytest.raises(DocsUnavailable):
        await docs.document()
    assert len(upstreams.fetches) == fetched  # not before retry_seconds
    retrying = ApiDocs(upstreams.fetch, retry_seconds=0)
    with pytest.raises(DocsUnavailable):
        await retrying.document()
    upstreams.failing = False
    assert orjson.loads(await retrying.document())["paths"]


async def test_an_old_document_is_served_while_a_new_one_is_built() -> None:
    upstreams = Upstreams()
    docs = ApiDocs(upstreams.fetch, max_age=0, retry_seconds=0)
    old = await docs.document()
    upstreams.documents[Service.PRODUCT.value]["components"]["schemas"]["Thing"]["title"] = "New"
    assert await docs.document() == old  # answered at once; the rebuild runs behind it
    await asyncio.sleep(0.05)
    assert await docs.document() != old
    upstreams.failing = True
    newest = await docs.document()
    await asyncio.sleep(0.05)
    assert await docs.document() == newest  # a failed rebuild keeps the last good one
    await docs.close()


async def test_a_document_that_lacks_a_route_is_not_served() -> None:
    upstreams = Upstreams()
    del upstreams.documents[Service.AUTH.value]["paths"]["/auth/me"]
    with pytest.raises(DocsUnavailable):
        await ApiDocs(upstreams.fetch).document()


async def test_the_page_loads_only_this_gateways_assets_under_its_own_policy() -> None:
    docs = ApiDocs(Upstreams().fetch)
    status, headers, page = await answer(docs, PAGE_PATH)
    assert status == 200 and headers[b"content-type"] == b"text/html; charset=utf-8"
    assert headers[b"content-security-policy"] == PAGE_CSP
    assert b"script-src 'self';" in PAGE_CSP and b"unsafe" not in PAGE_CSP
    loaded = re.findall(rb'(?:src|href)="([^"]+)"', page)
    assert loaded and all(
        url == b"data:," or url.startswith(b"/api-docs/static/") for url in loaded
    )
    routes = docs.routes()
    for url in loaded:
        if url != b"data:,":
            assert url.decode() in routes
            status, headers, body = await answer(docs, url.decode())
            assert status == 200 and body
            assert headers[b"content-security-policy"] != PAGE_CSP


async def test_assets_are_the_packaged_swagger_ui_files_cached_for_good() -> None:
    docs = ApiDocs(Upstreams().fetch)
    path = f"/api-docs/static/{swagger_ui_path.name}/swagger-ui-bundle.js"
    status, headers, body = await answer(docs, path)
    assert status == 200
    assert body == (swagger_ui_path / "swagger-ui-bundle.js").read_bytes()
    assert headers[b"content-type"] == b"text/javascript; charset=utf-8"
    assert b"immutable" in headers[b"cache-control"]
    status, headers, body = await answer(docs, "/api-docs/static/swagger-initializer.js")
    assert b'url: "/api-docs/openapi.json"' in body and b"validatorUrl: null" in body
    assert headers[b"cache-control"] == b"no-cache"
