"""The composition root: create_app(settings) builds the gateway as a raw ASGI app.

No FastAPI on the proxy path: a request costs one header pass, one dict lookup in the
policy table, a cached token check, a rate-limit hit, a credential and the upstream
exchange (docs/decisions/gateway-upstream-client.md has the figures). Background tasks
keep the JWKS and the revoked sessions fresh, so no request waits for either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.types import Receive, Scope, Send

from api_gateway.api_docs import ApiDocs
from api_gateway.bulkhead import Bulkheads
from api_gateway.config import Settings
from api_gateway.connection import UpstreamError
from api_gateway.cors import CorsPolicy
from api_gateway.headers import ForwardedFor
from api_gateway.jwks import JwksCache, TokenVerifier
from api_gateway.limiter import Limiter
from api_gateway.metrics import RequestMetrics
from api_gateway.policy import PolicyTable, Service
from api_gateway.proxy import Proxy
from api_gateway.readiness import Readiness
from api_gateway.revocation import MARGIN_SECONDS, RevocationFeed, RevokedSessions
from api_gateway.router import Router
from api_gateway.throttling import Throttling
from api_gateway.upstream import Upstream, fetch
from shop_common.credential import CREDENTIAL_HEADER, Caller, CredentialSigner, RequestBinding
from shop_common.keys import ensure_ed25519_keypair, load_private_key

if TYPE_CHECKING:
    from api_gateway.redis_link import RedisLink
    from shop_common.tracing import Tracing

JWKS_PATH = b"/auth/jwks.json"
REVOCATIONS_PATH = b"/internal/revocations"
# The gateway's own fetches (keys, revocations) are retried soon anyway: never wait long.
INTERNAL_TIMEOUT_CAP = 5.0
logger = logging.getLogger(__name__)


class Gateway:
    """The ASGI application; `running()` (or the ASGI lifespan) starts and stops it."""

    def __init__(self, settings: Settings, *, tracing: Tracing | None = None) -> None:
        self.settings = settings
        self.tracing = tracing or _otlp_tracing(settings)
        self.upstreams = {
            service: Upstream(service, settings.upstream_urls(service)) for service in Service
        }
        self.redis: RedisLink | None = None
        if settings.redis_url:
            # Imported only with a REDIS_URL: redis-py costs a process ~7 MB.
            from api_gateway.redis_link import RedisLink

            self.redis = RedisLink(settings.redis_url, timeout=settings.redis_timeout)
        self.keys = JwksCache(
            self._fetch_jwks,
            refetch_interval=settings.jwks_refetch_interval,
            max_age=settings.jwks_max_age,
        )
        self.revoked = RevokedSessions(settings.access_token_ttl_seconds + MARGIN_SECONDS)
        self.revocations = RevocationFeed(
            self.revoked,
            poll_auth_service=self._fetch_revocations,
            redis=self.redis,
            redis_key=settings.revocation_redis_key,
            interval=settings.revocation_poll_seconds,
        )
        self.tokens = TokenVerifier(
            self.keys,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            cache_size=settings.token_cache_size,
            revoked=self.revoked,
        )
        self.limiter = Limiter(self.redis, key_prefix=settings.rate_limit_key_prefix)
        self.readiness = Readiness(
            {service.value: upstream for service, upstream in self.upstreams.items()},
            cache_seconds=settings.ready_cache_seconds,
            timeout=settings.upstream_timeout,
            redis=self.redis,
            keys_loaded=lambda: self.keys.loaded,
            load_keys=self.keys.refresh,
        )
        self.metrics = RequestMetrics()
        # The public API's OpenAPI document, built from the services' own on first request.
        self.docs = ApiDocs(self._fetch_from)
        self._signer: CredentialSigner | None = None
        self._router: Router | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            router = self._router
            if router is None:
                raise RuntimeError("the gateway has not been started (ASGI lifespan)")
            await router(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets are not part of the API
            await send({"type": "websocket.close", "code": 1008})

    def start(self) -> None:
        """Load (or, in development, create) the credential key and wire the router."""
        settings = self.settings
        # make run creates the pair first; this is the convenience for a bare `serve`.
        ensure_ed25519_keypair(settings.gateway_private_key_path, settings.gateway_public_key_path)
        self._signer = CredentialSigner(load_private_key(settings.gateway_private_key_path))
        proxy = Proxy(
            self.upstreams,
            self._signer,
            self.metrics,
            timeout=settings.upstream_timeout,
            max_body=settings.max_body_bytes,
            revoked=self.revoked,
            tracing=self.tracing,
        )
        self._router = Router(
            policy=PolicyTable(),
            tokens=self.tokens,
            proxy=proxy,
            readiness=self.readiness,
            cors=CorsPolicy(settings.cors_origins),
            metrics=self.metrics,
            forwarded=ForwardedFor(settings.trusted_networks),
            metrics_networks=settings.metrics_networks,
            tracing=self.tracing,
            throttling=Throttling(self.limiter, settings),
            own_routes=self.docs.routes(),
            bulkheads=Bulkheads(search_limit=settings.search_concurrency),
        )
        self._background(self.keys.keep_fresh(), "jwks-refresh")
        self._background(self.revocations.run(), "revocation-feed")
        # Feeds the balancer: instances that are down or draining are skipped.
        self._background(
            self.readiness.keep_polling(settings.upstream_probe_seconds), "upstream-probes"
        )

    def _background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    async def stop(self) -> None:
        self._router = None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.keys.close()
        # Readiness first: its in-flight probe may be opening a Redis connection, which
        # closing the client after it would leave open.
        await self.readiness.close()
        if self.redis is not None:
            await self.redis.close()
        await self.docs.close()
        for upstream in self.upstreams.values():
            upstream.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        self.start()
        try:
            yield self
        finally:
            await self.stop()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.start()
                except Exception as exc:
                    logger.exception("gateway start failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _fetch_jwks(self) -> bytes:
        """The auth-service's JWKS, asked for like any request: with a gateway credential."""
        return await self._fetch_from(Service.AUTH, JWKS_PATH)

    async def _fetch_revocations(self, since: str) -> bytes:
        """auth-service's internal list of sessions revoked after `since` (RFC 3339)."""
        target = REVOCATIONS_PATH + b"?since=" + quote(since).encode()
        return await self._fetch_from(Service.AUTH, target)

    async def _fetch_from(self, service: Service, target: bytes) -> bytes:
        """The gateway's own GET to a service (keys, revocations, its OpenAPI document)."""
        assert self._signer is not None
        request_id = uuid.uuid4().hex
        credential = self._signer.mint(
            audience=service.value,
            caller=Caller(user_id=None, role=None),
            request=RequestBinding.of_target("GET", target.decode("ascii"), request_id),
        )
        headers = [
            (b"x-request-id", request_id.encode()),
            (CREDENTIAL_HEADER.encode(), credential.encode()),
            (b"accept", b"application/json"),
        ]
        status, body = await fetch(
            self.upstreams[service],
            target,
            headers,
            timeout=min(self.settings.upstream_timeout, INTERNAL_TIMEOUT_CAP),
        )
        if status != 200:
            raise UpstreamError(f"{target.decode()} answered {status}")
        return body


def _otlp_tracing(settings: Settings) -> Tracing | None:
    """Traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; else no opentelemetry."""
    if not settings.otel_exporter_otlp_endpoint:
        return None
    from shop_common.tracing import Tracing

    return Tracing.to_otlp("api-gateway", settings.otel_exporter_otlp_endpoint)


def create_app(settings: Settings | None = None, *, tracing: Tracing | None = None) -> Gateway:
    return Gateway(settings or Settings(), tracing=tracing)
