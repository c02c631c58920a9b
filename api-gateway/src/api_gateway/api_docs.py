"""The API documentation the gateway serves itself: the document and Swagger UI.

GET /api-docs/openapi.json is assembled (openapi.py) from each service's own
/openapi.json, fetched with a gateway credential the first time it is asked for and
cached; an older copy is served while a newer one is fetched in the background, and a
failed fetch is retried on a later request (503 until one succeeds). GET /api-docs is
Swagger UI with every asset from the swagger-ui-bundle package, served from here, so
the page works with no internet: its Content-Security-Policy allows nothing else.
GET /api-docs/asyncapi.json is the AsyncAPI document of the events (asyncapi.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path

import orjson
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from api_gateway import asyncapi
from api_gateway.exceptions import UpstreamUnavailable
from api_gateway.openapi import assemble
from api_gateway.policy import RULES, Rule, Service
from api_gateway.responses import Exchange

logger = logging.getLogger(__name__)

PAGE_PATH = "/api-docs"
DOCUMENT_PATH = "/api-docs/openapi.json"
STATIC_PREFIX = "/api-docs/static/"
SERVICE_DOCUMENT = b"/openapi.json"
# Only the files the page loads; a new Swagger UI release gets a new folder name, so its
# files may be cached for good.
ASSETS = {
    "swagger-ui-bundle.js": b"text/javascript; charset=utf-8",
    "swagger-ui.css": b"text/css; charset=utf-8",
}
_JSON = b"application/json"
_HTML = b"text/html; charset=utf-8"
_JS = b"text/javascript; charset=utf-8"
_NO_CACHE = (b"cache-control", b"no-cache")
_FOREVER = (b"cache-control", b"public, max-age=31536000, immutable")
# The page runs our own script and Swagger UI's, styles from its stylesheet, icons from
# data: URIs in it; "Try it out" and the document are fetched from this origin only.
PAGE_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    b"frame-ancestors 'none'"
)
INITIALIZER = b"""window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api-docs/openapi.json",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    displayRequestDuration: true,
    showExtensions: true,
    persistAuthorization: false
  });
});
"""

FetchDocument = Callable[[Service, bytes], Awaitable[bytes]]
Handler = Callable[[Exchange], Awaitable[None]]


class DocsUnavailable(UpstreamUnavailable):
    def __init__(self) -> None:
        super().__init__("The API documentation cannot be built now: a service did not answer.")


class ApiDocs:
    def __init__(
        self,
        fetch: FetchDocument,
        *,
        rules: Iterable[Rule] = RULES,
        max_age: float = 60.0,
        retry_seconds: float = 1.0,
        assets: Path = Path(str(swagger_ui_path)),
    ) -> None:
        self._fetch = fetch
        self._rules = tuple(rules)
        self._services = sorted({rule.service for rule in self._rules})
        self._max_age = max_age
        self._retry_seconds = retry_seconds
        self._assets_dir = assets
        self._asset_cache: dict[str, bytes] = {}
        self._body: bytes | None = None
        self._built_at = -math.inf
        self._failed_at = -math.inf
        self._inflight: asyncio.Task[bytes | None] | None = None
        self.static_prefix = f"{STATIC_PREFIX}{assets.name}/"

    def routes(self) -> dict[str, Handler]:
        """Exact path -> handler; every one answers GET and HEAD."""
        routes: dict[str, Handler] = {
            PAGE_PATH: self._page,
            DOCUMENT_PATH: self._document,
            asyncapi.ASYNCAPI_PATH: self._events_document,
            STATIC_PREFIX + "swagger-initializer.js": self._initializer,
        }
        for name in ASSETS:
            routes[self.static_prefix + name] = partial(self._asset, name)
        return routes

    async def document(self) -> bytes:
        """The assembled document (503 DocsUnavailable while none can be built)."""
        body = self._body
        now = time.monotonic()
        if body is not None:
            if now - self._built_at > self._max_age and now - self._failed_at > self._retry_seconds:
                self._start_build()  # the caller gets the copy it has; the next, the new one
            return body
        if self._inflight is None and now - self._failed_at < self._retry_seconds:
            raise DocsUnavailable()
        built = await asyncio.shield(self._start_build())
        if built is None:
            raise DocsUnavailable()
        return built

    def _start_build(self) -> asyncio.Task[bytes | None]:
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._build(), name="api-docs-build")
        return self._inflight

    async def _build(self) -> bytes | None:
        try:
            raw = await asyncio.gather(
                *(self._fetch(service, SERVICE_DOCUMENT) for service in self._services)
            )
            sources = {
                service.value: orjson.loads(text)
                for service, text in zip(self._services, raw, strict=True)
            }
            body = orjson.dumps(assemble(sources, self._rules))
        except Exception:  # any failure (network, a bad document) is retried later
            self._failed_at = time.monotonic()
            logger.warning("the API documentation cannot be built", exc_info=True)
            return None
        finally:
            self._inflight = None
        self._body, self._built_at = body, time.monotonic()
        return body

    async def close(self) -> None:
        task = self._inflight
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _document(self, exchange: Exchange) -> None:
        await exchange.respond(200, await self.document(), _JSON, [_NO_CACHE])

    async def _events_document(self, exchange: Exchange) -> None:
        await exchange.respond(200, asyncapi.DOCUMENT, _JSON, [_NO_CACHE])

    async def _page(self, exchange: Exchange) -> None:
        exchange.content_security_policy = PAGE_CSP
        await exchange.respond(200, self.page(), _HTML, [_NO_CACHE])

    async def _initializer(self, exchange: Exchange) -> None:
        await exchange.respond(200, INITIALIZER, _JS, [_NO_CACHE])

    async def _asset(self, name: str, exchange: Exchange) -> None:
        body = self._asset_cache.get(name)
        if body is None:
            body = (self._assets_dir / name).read_bytes()
            self._asset_cache[name] = body
        await exchange.respond(200, body, ASSETS[name], [_FOREVER])

    def page(self) -> bytes:
        prefix = self.static_prefix
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shop API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{prefix}swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{prefix}swagger-ui-bundle.js"></script>
<script src="{STATIC_PREFIX}swagger-initializer.js"></script>
</body>
</html>
""".encode()
