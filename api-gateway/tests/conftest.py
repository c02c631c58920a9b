"""Fixtures: fake upstreams as small real servers on ephemeral ports, keys, tokens, a gateway.

The fake upstreams are raw ASGI apps served by uvicorn in the test's own event loop;
they record every request and answer with an echo of it, or as a query parameter
asks: `delay` (seconds before answering), `size` (bytes of body, streamed), `status`,
`header` (`name:value`, added to the response; repeatable).
Like auth-service, a request whose credential carries `era` (an exhausted per-email
limit) gets 429 with that Retry-After, unless the test asked for an error status (the
body's validation comes first). `/internal/revocations` lists `revocations`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

import httpx
import jwt
import orjson
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from api_gateway.config import Settings
from api_gateway.main import Gateway, create_app
from shop_common.credential import RequestBinding
from testsupport.processes import free_port


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Recorded:
    method: str
    path: str
    raw_path: bytes
    query: bytes
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key == name]
        return values[0] if values else None

    @property
    def binding(self) -> RequestBinding:
        """The request as the upstream received it, which its credential must be for."""
        request_id = self.header("x-request-id") or ""
        return RequestBinding(self.method, self.raw_path.decode("latin-1"), self.query, request_id)

    def credential_claims(self) -> dict[str, Any]:
        """The gateway credential's claims (the gateway's own tests check its signature)."""
        credential = self.header("x-gateway-credential")
        if credential is None:
            return {}
        claims: dict[str, Any] = jwt.decode(credential, options={"verify_signature": False})
        return claims


@dataclass
class FakeUpstream:
    """Answers every request by echoing it; /ready and /auth/jwks.json as configured."""

    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    ready_status: int = 200
    jwks_status: int = 200
    requests: list[Recorded] = field(default_factory=list)
    # (sid, revoked_at as RFC 3339) pairs served at /internal/revocations
    revocations: list[tuple[str, str]] = field(default_factory=list)
    # the `as_of` of each /internal/revocations answer, in order
    revocations_as_of: list[str] = field(default_factory=list)
    url: str = ""

    def reset(self, *, jwks: dict[str, Any] | None = None) -> None:
        self.jwks = jwks or {"keys": []}
        self.ready_status = 200
        self.jwks_status = 200
        self.requests = []
        self.revocations = []
        self.revocations_as_of = []

    def revoke(self, sid: str) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.revocations.append((sid, now))

    @property
    def revocation_polls(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/internal/revocations"]

    @property
    def forwarded(self) -> list[Recorded]:
        """Requests forwarded for a client (the gateway's own probes and key fetches are
        the ones without X-Forwarded-For)."""
        return [r for r in self.requests if r.header("x-forwarded-for") is not None]

    @property
    def jwks_fetches(self) -> int:
        return sum(
            r.path == "/auth/jwks.json" and r.header("x-forwarded-for") is None
            for r in self.requests
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        recorded = Recorded(
            method=scope["method"],
            path=scope["path"],
            raw_path=scope["raw_path"],
            query=scope["query_string"],
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=b"".join(chunks),
        )
        self.requests.append(recorded)
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        if scope["path"] == "/ready":
            await _json(send, self.ready_status, {"status": "ok"})
            return
        if scope["path"] == "/auth/jwks.json":
            await _json(send, self.jwks_status, self.jwks)
            return
        if scope["path"] == "/internal/revocations":
            revoked = [{"sid": sid, "revoked_at": at} for sid, at in self.revocations]
            as_of = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self.revocations_as_of.append(as_of)
            await _json(send, 200, {"revoked_sessions": revoked, "as_of": as_of})
            return
        if "delay" in query:
            await asyncio.sleep(float(query["delay"]))
        status = int(query.get("status", 200))
        era = recorded.credential_claims().get("era")
        if era is not None and status in (200, 201, 401, 409):
            await _json(send, 429, {"status": 429}, extra=[(b"retry-after", b"%d" % era)])
            return
        if "size" in query:
            await _stream(send, status, int(query["size"]), chunked="chunked" in query)
            return
        await _json(
            send,
            status,
            {
                "method": recorded.method,
                "path": recorded.path,
                "query": recorded.query.decode(),
                "body_length": len(recorded.body),
            },
            extra=[(b"x-request-id", b"upstream-says-other"), (b"server", b"fake")]
            + [
                (name.encode(), value.encode())
                for name, _, value in (
                    header.partition(":")
                    for header in parse_qs(scope["query_string"].decode()).get("header", [])
                )
            ],
        )


async def _json(
    send: Any, status: int, body: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    raw = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": raw})


async def _stream(send: Any, status: int, size: int, *, chunked: bool) -> None:
    headers = [(b"content-type", b"application/octet-stream")]
    if not chunked:
        headers.append((b"content-length", b"%d" % size))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    piece = 64 * 1024
    sent = 0
    while sent < size:
        part = min(piece, size - sent)
        sent += part
        await send({"type": "http.response.body", "body": b"x" * part, "more_body": sent < size})
    if size == 0:
        await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def serve(app: Any, *, lifespan: Literal["on", "off"] = "off") -> AsyncIterator[str]:
    """Run an ASGI app on uvicorn, on an ephemeral port of 127.0.0.1, in this event loop."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it Nagle's algorithm meets delayed ACKs (40 ms per keep-alive request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan=lifespan, log_level="warning", access_log=False, http="httptools", ws="none"
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    def jwk(self) -> dict[str, str]:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA"}


def new_signing_key() -> SigningKey:
    return SigningKey(kid=f"k-{uuid.uuid4().hex[:8]}", private_key=Ed25519PrivateKey.generate())


@dataclass
class TokenFactory:
    """Access tokens as auth-service signs them, with any claim or header overridden."""

    key: SigningKey

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": str(uuid.uuid4()),
            "role": "USER",
            "sid": str(uuid.uuid4()),
            "iss": "shop-auth",
            "aud": "shop-api",
            "iat": now,
            "exp": now + 900,
            "jti": str(uuid.uuid4()),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, *, key: SigningKey | None = None, **overrides: Any) -> str:
        key = key or self.key
        return jwt.encode(
            self.claims(**overrides), key.private_key, algorithm="EdDSA", headers={"kid": key.kid}
        )

    def bearer(self, **overrides: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**overrides)}"}


@pytest.fixture
def signing_key() -> SigningKey:
    return new_signing_key()


@pytest.fixture
def tokens(signing_key: SigningKey) -> TokenFactory:
    return TokenFactory(signing_key)


@pytest.fixture(scope="session")
async def auth_server() -> AsyncIterator[FakeUpstream]:
    # One server per session (starting and stopping uvicorn takes a few tenths of a
    # second); each test gets it back in its initial state.
    upstream = FakeUpstream()
    async with serve(upstream) as url:
        upstream.url = url
        yield upstream


@pytest.fixture(scope="session")
async def product_server() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream()
    async with serve(upstream) as url:
        upstream.url = url
        yield upstream


@pytest.fixture(scope="session")
async def order_server() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream()
    async with serve(upstream) as url:
        upstream.url = url
        yield upstream


@pytest.fixture
def auth_upstream(auth_server: FakeUpstream, signing_key: SigningKey) -> FakeUpstream:
    auth_server.reset(jwks={"keys": [signing_key.jwk()]})
    return auth_server


@pytest.fixture
def product_upstream(product_server: FakeUpstream) -> FakeUpstream:
    product_server.reset()
    return product_server


@pytest.fixture
def order_upstream(order_server: FakeUpstream) -> FakeUpstream:
    order_server.reset()
    return order_server


SettingsFactory = Callable[..., Settings]
OpenClient = contextlib.AbstractAsyncContextManager[httpx.AsyncClient]


@pytest.fixture
def make_settings(
    tmp_path: Path,
    auth_upstream: FakeUpstream,
    product_upstream: FakeUpstream,
    order_upstream: FakeUpstream,
) -> SettingsFactory:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "auth_service_url": auth_upstream.url,
            "product_service_url": product_upstream.url,
            "order_service_url": order_upstream.url,
            "upstream_timeout": 2.0,
            "ready_cache_seconds": 0,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
async def gateway(make_settings: SettingsFactory) -> AsyncIterator[Gateway]:
    async with create_app(make_settings()).running() as app:
        yield app


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
        yield c


@pytest.fixture
def serve_app() -> Callable[..., contextlib.AbstractAsyncContextManager[str]]:
    """`async with serve_app(asgi_app) as url:` a real server on an ephemeral port."""
    return serve


@pytest.fixture
def refused_url() -> str:
    """An http URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def new_key() -> Callable[[], SigningKey]:
    return new_signing_key


@contextlib.asynccontextmanager
async def gateway_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with create_app(settings).running() as app:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            yield c


@pytest.fixture
def open_gateway() -> Callable[
    [Settings], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]
]:
    """`async with open_gateway(settings) as client:` a gateway built from those settings."""
    return gateway_client
