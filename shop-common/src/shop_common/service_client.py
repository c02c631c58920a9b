"""Calls from one service to another, each with a credential the caller mints for it.

    client = ServiceClient.from_settings(
        settings, minter="order-service", target="product-service",
        base_url=settings.product_service_url, timeout=5.0,
    )
    response = await client.request("POST", "/stock/reservations", json={...}, caller=caller)
    await client.close()  # in the lifespan's cleanup

Each attempt carries a new credential bound to its method, path, query and request id
(the current request's X-Request-ID, passed on), and the W3C trace context. A request is
retried only when that is safe: any method whose connection could not be made (nothing
was sent; `retries` times, with a short backoff), and an idempotent one (GET, HEAD, PUT,
DELETE, OPTIONS) once more when its connection broke, which aiohttp does itself (RFC
9112 §9.3.1) with the same credential: accepted if the first copy never reached the
service, refused (401) if it did, rather than run twice. A timeout is never retried: the
service may still be working on it, but its credential carries a deadline (`dl`) a margin
before this attempt gives up, never later than the deadline of the request being served,
so the service refuses to commit it once the caller can no longer hear the answer. An
attempt waits at most until that inbound deadline: past it, ServiceTimedOut at once.

ServiceCallError             nothing usable came back
  ├─ ServiceUnreachable      no connection could be made (after the retries)
  ├─ ServiceTimedOut         no complete answer within `timeout`
  └─ ServiceBroken           the connection broke, or the answer was malformed or too large
Any status the service answers (4xx and 5xx included) is a ServiceResponse, not an error.

aiohttp underneath (docs/decisions/service-client.md has the comparison).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from yarl import URL

from shop_common.credential import (
    CREDENTIAL_HEADER,
    Caller,
    CredentialSigner,
    RequestBinding,
    deadline_after,
)
from shop_common.deadline import time_left
from shop_common.keys import load_private_key
from shop_common.logging import request_id_var
from shop_common.request_context import request_headers_var
from shop_common.settings import ServiceSettings

DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 2
RETRY_BACKOFF_SECONDS = 0.05
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# Below uvicorn's 5 s keep-alive: we never reuse a connection as the server closes it.
KEEPALIVE_SECONDS = 2.0
_TRACE_HEADERS = (b"traceparent", b"tracestate")
_ANONYMOUS = Caller(user_id=None, role=None)


class ServiceCallError(Exception):
    """A call to another service produced no usable response."""

    def __init__(self, message: str, *, target: str, method: str, path: str) -> None:
        super().__init__(f"{method} {target}{path}: {message}")
        self.target = target


class ServiceUnreachable(ServiceCallError):
    """No connection to the service could be made."""


class ServiceTimedOut(ServiceCallError):
    """The service did not answer in time."""


class ServiceBroken(ServiceCallError):
    """The connection broke, or the response was malformed or too large."""


@dataclass(frozen=True, slots=True)
class ServiceResponse:
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class ServiceClient:
    """One target service, one connection pool; created and closed by the caller's lifespan."""

    def __init__(
        self,
        *,
        target: str,
        base_url: str,
        signer: CredentialSigner,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        if timeout <= 0 or retries < 0:
            raise ValueError("timeout must be positive and retries not negative")
        self.target = target
        self._base = base_url.rstrip("/")
        self._signer = signer
        self._timeout = timeout
        self._retries = retries
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(
        cls,
        settings: ServiceSettings,
        *,
        minter: str,
        target: str,
        base_url: str,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> ServiceClient:
        """Signs as `minter` with its key (CREDENTIAL_KEYS_DIR/<minter>/private.pem)."""
        key = load_private_key(settings.credential_private_key_path(minter))
        return cls(
            target=target,
            base_url=base_url,
            signer=CredentialSigner(key, issuer=minter),
            timeout=timeout,
            retries=retries,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        caller: Caller | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ServiceResponse:
        """Send `method path?params` for `caller` (anonymous when None), `json` as body."""
        if not path.startswith("/") or not path.isascii() or "?" in path or "#" in path:
            raise ValueError("path must be an encoded absolute path, without query")
        method = method.upper()
        query = urlencode(params or {}).encode("ascii")
        request_id = request_id_var.get() or uuid.uuid4().hex
        binding = RequestBinding(method, path, query, request_id)
        sent = {**(headers or {})}
        sent.update(_trace_headers())
        sent["x-request-id"] = request_id
        sent["accept"] = "application/json"
        body = None
        if json is not None:
            body = orjson.dumps(json)
            sent["content-type"] = "application/json"
        url = URL(self._base + path + ("?" + query.decode("ascii") if query else ""), encoded=True)
        for attempt in range(self._retries + 1):
            timeout = self._attempt_timeout(method, url)
            # A new credential each time: the service refuses a credential seen before.
            sent[CREDENTIAL_HEADER] = self._signer.mint(
                audience=self.target,
                caller=caller or _ANONYMOUS,
                request=binding,
                deadline=deadline_after(timeout),
            )
            try:
                return await self._send(method, url, sent, body, timeout)
            except ServiceCallError as exc:
                if attempt == self._retries or not _retryable(exc):
                    raise
                await asyncio.sleep(RETRY_BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def get(self, path: str, **kwargs: Any) -> ServiceResponse:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> ServiceResponse:
        return await self.request("POST", path, **kwargs)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ServiceClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _attempt_timeout(self, method: str, url: URL) -> float:
        """This client's timeout, cut to what is left of the request being served."""
        left = time_left()
        if left is None or left >= self._timeout:
            return self._timeout
        if left <= 0:
            raise ServiceTimedOut(
                "the request being served is past its deadline",
                target=self.target,
                method=method,
                path=url.raw_path,
            )
        return left

    async def _send(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> ServiceResponse:
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS)
            session = self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False
            )
        where = {"target": self.target, "method": method, "path": url.raw_path}
        try:
            async with session.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                content = await response.content.read(MAX_RESPONSE_BYTES + 1)
                if len(content) > MAX_RESPONSE_BYTES:
                    raise ServiceBroken("response too large", **where)
                return ServiceResponse(
                    status=response.status,
                    headers={name.lower(): value for name, value in response.headers.items()},
                    body=content,
                )
        except aiohttp.ConnectionTimeoutError as exc:  # connecting: nothing was sent
            raise _Unsent(f"connect timed out: {exc}", **where) from exc
        except aiohttp.ClientConnectorError as exc:  # refused, unresolvable: nothing sent
            raise _Unsent(f"cannot connect: {exc}", **where) from exc
        except TimeoutError as exc:
            raise ServiceTimedOut("no answer in time", **where) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ServiceBroken(f"connection broke: {exc!r}", **where) from exc
        except aiohttp.ClientResponseError as exc:
            raise ServiceBroken(f"malformed response: {exc.message}", **where) from exc


class _Unsent(ServiceUnreachable):
    """Connecting failed: the service saw nothing, so any method may be sent again."""


def _retryable(exc: ServiceCallError) -> bool:
    # A broken connection of an idempotent request was retried by aiohttp already.
    return isinstance(exc, _Unsent)


def _trace_headers() -> dict[str, str]:
    """The current span's trace context when tracing is on, else the incoming request's."""
    if "shop_common.tracing" in sys.modules and "opentelemetry.trace" in sys.modules:
        from opentelemetry.propagate import inject

        carrier: dict[str, str] = {}
        inject(carrier)
        if carrier:
            return carrier
    incoming = request_headers_var.get()
    if not incoming:
        return {}
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in incoming
        if name in _TRACE_HEADERS
    }
