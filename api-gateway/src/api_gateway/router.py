"""Every request's path through the gateway, checks in the contract's order.

404 unknown path, 405, 401 (revoked sessions included), 403 by role, 429 by address,
then the proxy (413, forwarding; 415, 400, 422 and 429 by email are the service's, told
by the credential when an email's limit is reached). The gateway's own /health, /ready,
/metrics and the API docs (api_docs.py: /api-docs, its document and assets) are answered
here, GET and HEAD only, never rate limited; nothing else is, so a request either
matches the policy table or is 404.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Receive, Scope, Send

from api_gateway.bulkhead import DEFAULT_SEARCH_CONCURRENCY, Bulkheads
from api_gateway.config import Network
from api_gateway.cors import CorsPolicy
from api_gateway.exceptions import (
    InvalidToken,
    MethodNotAllowed,
    NotAuthenticated,
    RoleForbidden,
    RouteNotFound,
)
from api_gateway.headers import ClientAddress, ForwardedFor, RequestHeaders, bearer_token
from api_gateway.jwks import Identity, TokenVerifier
from api_gateway.metrics import IN_FLIGHT, RequestMetrics
from api_gateway.policy import Access, PolicyTable, Rule, Throttle
from api_gateway.proxy import ClientDisconnected, Proxy, Unread
from api_gateway.readiness import Readiness
from api_gateway.responses import CLIENT_CLOSED, Exchange
from api_gateway.throttling import Throttling, email_of
from shop_common.logging import request_id_var, user_id_var
from shop_common.problems import Problem
from shop_common.request_context import sane_request_id

if TYPE_CHECKING:
    from shop_common.tracing import Tracing

access_log = logging.getLogger("access")
logger = logging.getLogger(__name__)
_JSON = b"application/json"
_METRICS_TYPE = CONTENT_TYPE_LATEST.encode()
OWN_ALLOW = "GET, HEAD"
UNKNOWN_CLIENT = "unknown"  # no peer address (not over TCP): one shared rate-limit key


@dataclass(frozen=True, slots=True)
class _EmailLimits:
    """What a login or register forward carries: the body already read for its email, the
    email's wait (None: not limited) and what a failed login counts."""

    body: bytes | None | Unread = Unread.BODY
    retry_after: int | None = None
    on_status: Callable[[int], Awaitable[None]] | None = None


# Every other route: the proxy reads the body itself, as it streams.
_NO_EMAIL_LIMITS = _EmailLimits()


class UnexpectedError(Problem):
    status = 500


class Router:
    def __init__(
        self,
        *,
        policy: PolicyTable,
        tokens: TokenVerifier,
        proxy: Proxy,
        readiness: Readiness,
        cors: CorsPolicy,
        metrics: RequestMetrics,
        forwarded: ForwardedFor,
        throttling: Throttling,
        metrics_networks: tuple[Network, ...] = (),
        own_routes: Mapping[str, Callable[[Exchange], Awaitable[None]]] | None = None,
        tracing: Tracing | None = None,
        bulkheads: Bulkheads | None = None,
    ) -> None:
        self._bulkheads = bulkheads or Bulkheads(search_limit=DEFAULT_SEARCH_CONCURRENCY)
        self._tracing = tracing
        self._policy = policy
        self._forwarded = forwarded
        self._throttling = throttling
        self._tokens = tokens
        self._proxy = proxy
        self._readiness = readiness
        self._cors = cors
        self._metrics = metrics
        self._metrics_networks = metrics_networks
        self._own: dict[str, Callable[[Exchange], Awaitable[None]]] = {
            "/health": self._health,
            "/ready": self._ready,
            "/metrics": self._metrics_text,
            **(own_routes or {}),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracing = self._tracing
        if tracing is None:
            await self._handle(scope, receive, send)
            return
        method = scope["method"]
        with tracing.server_span(method, scope["headers"]) as span:
            exchange = await self._handle(scope, receive, send)
            tracing.finish(span, method, exchange.route, exchange.status or CLIENT_CLOSED)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> Exchange:
        started = time.perf_counter()
        headers = RequestHeaders(scope["headers"])
        exchange = Exchange(send, sane_request_id(headers.request_id))
        context = request_id_var.set(exchange.request_id)
        IN_FLIGHT.inc()
        try:
            await self._dispatch(scope, receive, exchange, headers)
        except Problem as problem:
            if isinstance(problem, InvalidToken):
                logger.info("token refused", extra={"reason": problem.reason})
            if exchange.started:
                logger.warning("response cut short", extra={"problem": problem.status})
            else:
                await exchange.problem(problem)
        except ClientDisconnected:
            exchange.status = exchange.status or CLIENT_CLOSED
        except Exception:
            logger.exception("unexpected error")
            if not exchange.started:
                await exchange.problem(UnexpectedError("An unexpected error occurred."))
        finally:
            IN_FLIGHT.dec()
            self._finish(scope, exchange, time.perf_counter() - started)
            request_id_var.reset(context)
        return exchange

    async def _dispatch(
        self, scope: Scope, receive: Receive, exchange: Exchange, headers: RequestHeaders
    ) -> None:
        method: str = scope["method"]
        raw_path = scope.get("raw_path")
        # Match the path as sent: percent-encoding never turns into a listed path.
        path = raw_path.decode("latin-1") if raw_path is not None else scope["path"]
        if headers.origin is not None and self._cors.enabled and self._cors.allows(headers.origin):
            exchange.extra_headers = self._cors.response_headers(headers.origin)

        own = self._own.get(path)
        if own is not None:
            if path == "/metrics" and not self._may_read_metrics(scope, headers):
                raise RouteNotFound()
            exchange.route = path
            if method not in ("GET", "HEAD"):
                raise MethodNotAllowed(OWN_ALLOW)
            await own(exchange)
            return

        resource = self._policy.resolve(path)
        if resource is None:
            raise RouteNotFound()
        exchange.route = resource.template
        rule = resource.rules.get(method)
        if rule is None:
            if method == "OPTIONS" and headers.access_control_method and exchange.extra_headers:
                await self._preflight(exchange, headers, resource.allow)
                return
            raise MethodNotAllowed(resource.allow)

        identity = await self._authenticate(rule, headers)
        if identity is not None:
            exchange.user_id = identity.user_id
            user_id_var.set(identity.user_id)
        if rule.access is Access.ADMIN and not (identity is not None and identity.is_admin):
            raise RoleForbidden()
        client = self._forwarded.resolve(
            scope["client"][0] if scope.get("client") else None, headers.forwarded_for
        )
        address = client.address or UNKNOWN_CLIENT
        await self._throttling.check_address(rule.throttle, address, rule.template)
        limits = (
            _NO_EMAIL_LIMITS
            if rule.throttle is Throttle.GENERAL
            else await self._email_limits(receive, rule, headers, client)
        )
        # Only searches are limited (never the login and register POSTs).
        with self._bulkheads.enter(method, rule.template, scope.get("query_string", b"")):
            await self._proxy.forward(
                scope,
                receive,
                exchange,
                rule.service,
                path,
                headers,
                identity,
                client,
                body=limits.body,
                email_retry_after=limits.retry_after,
                on_status=limits.on_status,
                resendable=rule.resendable,
            )

    async def _email_limits(
        self, receive: Receive, rule: Rule, headers: RequestHeaders, client: ClientAddress
    ) -> _EmailLimits:
        """Login and register: the body is read whole for its email, whose limit the
        service enforces after validating the body (the credential's `era`)."""
        throttling = self._throttling
        body = await self._proxy.read_whole_body(receive, headers)
        email = email_of(body, headers.content_type)
        wait = None
        if email is not None:
            address = client.address or UNKNOWN_CLIENT
            wait = await throttling.email_retry_after(rule.throttle, email, address)
        on_status = None
        if email is not None and wait is None and rule.throttle is Throttle.LOGIN:

            async def on_status(status: int) -> None:
                if status == 401:  # a failed login counts against the email
                    await throttling.login_failed(email)

        return _EmailLimits(body, wait, on_status)

    def _may_read_metrics(self, scope: Scope, headers: RequestHeaders) -> bool:
        """METRICS_ALLOWED_NETWORKS, when set, against the client (trusted proxies heard)."""
        if not self._metrics_networks:
            return True
        peer = scope["client"][0] if scope.get("client") else None
        address, _ = self._forwarded.client_and_chain(peer, headers.forwarded_for)
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._metrics_networks)

    async def _authenticate(self, rule: Rule, headers: RequestHeaders) -> Identity | None:
        """401 when the route needs a token and there is none; any token given must be valid."""
        if not rule.reads_token:
            return None
        if headers.authorization is None:
            if rule.access is Access.PUBLIC:
                return None
            raise NotAuthenticated()
        token = bearer_token(headers.authorization)
        if token is None:
            raise InvalidToken("not a Bearer authorization")
        return await self._tokens.verify(token)

    async def _preflight(self, exchange: Exchange, headers: RequestHeaders, allow: str) -> None:
        assert headers.origin is not None
        exchange.extra_headers = self._cors.preflight_headers(
            headers.origin, allow, headers.access_control_headers
        )
        await exchange.respond(204, b"", b"text/plain")

    async def _health(self, exchange: Exchange) -> None:
        await exchange.respond(200, b'{"status":"ok"}', _JSON)

    async def _ready(self, exchange: Exchange) -> None:
        ready, report = await self._readiness.report()
        await exchange.respond(200 if ready else 503, orjson.dumps(report), _JSON)

    async def _metrics_text(self, exchange: Exchange) -> None:
        await exchange.respond(200, generate_latest(), _METRICS_TYPE)

    def _finish(self, scope: Scope, exchange: Exchange, seconds: float) -> None:
        status = exchange.status or CLIENT_CLOSED
        self._metrics.observe(exchange.route, scope["method"], status, seconds)
        access_log.info(
            "%s %s %s",
            scope["method"],
            scope["path"],
            status,
            extra={
                "method": scope["method"],
                "path": scope["path"],
                "route": exchange.route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "user_id": exchange.user_id,
            },
        )
