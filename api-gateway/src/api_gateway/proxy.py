"""Forwarding one request: body limits, the headers services trust, the response streamed.

The request body is read whole (at most max_body_bytes, else 413) before anything goes
upstream, so a client dribbling its body never holds a service's connection, and the
session is checked again once it is in: a session revoked (or a token expired) while the
body arrived is refused, not applied. The response is streamed back as it arrives.
Upstream failures become 503 (refused), 504 (no answer within UPSTREAM_TIMEOUT) or 502
(anything else), never a hang. Each credential carries the request's deadline, a margin
before UPSTREAM_TIMEOUT runs out: the service commits nothing past it, so a write answered
504 is never applied afterwards (docs/decisions/request-deadline.md).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Container, Mapping
from enum import Enum
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope

from api_gateway.connection import ConnectFailed, UpstreamBroken, UpstreamTimedOut
from api_gateway.exceptions import (
    BadGateway,
    BodyTooLarge,
    InvalidToken,
    MalformedRequest,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from api_gateway.headers import ClientAddress, RequestHeaders
from api_gateway.jwks import Identity
from api_gateway.metrics import RequestMetrics
from api_gateway.policy import Service
from api_gateway.responses import SECURITY_HEADER_NAMES, Exchange
from api_gateway.upstream import Upstream
from shop_common.credential import (
    CREDENTIAL_HEADER,
    Caller,
    CredentialSigner,
    RequestBinding,
    deadline_after,
)

if TYPE_CHECKING:
    from shop_common.tracing import Tracing

_CREDENTIAL = CREDENTIAL_HEADER.encode()
# Hop-by-hop, or set by our own server (date, server), or ours to set (request id, CORS,
# security headers).
RESPONSE_DROPPED = SECURITY_HEADER_NAMES | frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"date",
        b"server",
        b"x-request-id",
    }
)
RESPONSE_DROPPED_PREFIXES = (b"proxy-", b"access-control-")


class ClientDisconnected(Exception):
    """The client went away while sending its body: nobody is left to answer."""


class Unread(Enum):
    BODY = "unread"  # forward reads the body itself


class Proxy:
    def __init__(
        self,
        upstreams: Mapping[Service, Upstream],
        signer: CredentialSigner,
        metrics: RequestMetrics,
        *,
        timeout: float,
        max_body: int,
        revoked: Container[str] = frozenset(),
        tracing: Tracing | None = None,
    ) -> None:
        self._revoked = revoked
        self._tracing = tracing
        self._upstreams = upstreams
        self._signer = signer
        self._metrics = metrics
        self._timeout = timeout
        self._max_body = max_body

    async def forward(
        self,
        scope: Scope,
        receive: Receive,
        exchange: Exchange,
        service: Service,
        path: str,
        headers: RequestHeaders,
        identity: Identity | None,
        client: ClientAddress,
        *,
        body: bytes | None | Unread = Unread.BODY,
        email_retry_after: int | None = None,
        on_status: Callable[[int], Awaitable[None]] | None = None,
        resendable: bool = False,
    ) -> None:
        """Forward the request and relay the response; `on_status` learns the upstream's
        status before the client does (so a client's next request sees its effect);
        `resendable` writes go to another instance when theirs dies with them in flight."""
        sent = await self.read_whole_body(receive, headers) if body is Unread.BODY else body
        if identity is not None:
            self._check_still_valid(identity)
        out = headers.forward
        proto = headers.forwarded_proto
        if proto is None or not client.via_trusted_proxy:
            proto = scope["scheme"].encode("ascii")
        out.append((b"x-request-id", exchange.id_header))
        out.append((b"x-forwarded-proto", proto))
        if client.forwarded_for is not None:
            out.append((b"x-forwarded-for", client.forwarded_for))
        if headers.host is not None:
            out.append((b"x-forwarded-host", headers.host))
        query = scope["query_string"]
        target = path.encode("ascii") + (b"?" + query if query else b"")
        head_only = scope["method"] == "HEAD"
        method_name = "GET" if head_only else scope["method"]
        method = method_name.encode("ascii")
        # Bound to exactly what the service receives: the method sent, the path as the
        # client sent it, the query, and the request id.
        binding = RequestBinding(method_name, path, query, exchange.request_id)
        out.append((_CREDENTIAL, self._credential(service, identity, email_retry_after, binding)))
        if self._tracing is not None:
            # The client's traceparent, if any, is the parent of our span; the service's
            # parent is our span.
            self._tracing.inject(out)
        upstream = self._upstreams[service]
        sent_at = time.perf_counter()
        try:
            response = await upstream.request(
                method, target, out, sent, timeout=self._timeout, resendable=resendable
            )
        except ConnectFailed as exc:
            self._metrics.upstream_error(service, "connect")
            raise UpstreamUnavailable() from exc
        except UpstreamTimedOut as exc:
            self._metrics.upstream_error(service, "timeout")
            raise UpstreamTimeout() from exc
        except UpstreamBroken as exc:
            self._metrics.upstream_error(service, "protocol")
            raise BadGateway() from exc
        self._metrics.upstream_latency(service, time.perf_counter() - sent_at)
        try:
            if on_status is not None:
                await on_status(response.status)
            await self._relay(response.status, response.headers, exchange)
            if head_only:
                await exchange.body(b"")
            elif response.complete:
                await exchange.body(await response.read(self._timeout))
            else:
                while chunk := await response.read(self._timeout):
                    await exchange.body(chunk, more=True)
                await exchange.body(b"")
        except (UpstreamTimedOut, UpstreamBroken) as exc:
            # The head is already sent: all we can do is cut the response short.
            self._metrics.upstream_error(service, "body")
            raise BadGateway() from exc
        finally:
            response.release()

    def _credential(
        self,
        service: Service,
        identity: Identity | None,
        email_retry_after: int | None,
        binding: RequestBinding,
    ) -> bytes:
        if identity is None:
            caller = Caller(None, None, email_retry_after=email_retry_after)
        else:
            caller = Caller(
                user_id=identity.user_id,
                role=identity.role,
                session_id=identity.session_id,
                email_retry_after=email_retry_after,
            )
        # Minted just before the request goes out, so the gateway's wait for the answer
        # (UPSTREAM_TIMEOUT from the moment it is sent) ends after the deadline.
        token = self._signer.mint(
            audience=service.value,
            caller=caller,
            request=binding,
            deadline=deadline_after(self._timeout),
        )
        return token.encode("ascii")

    def _check_still_valid(self, identity: Identity) -> None:
        """The token was checked when the head arrived; the body may have taken seconds."""
        if identity.session_id in self._revoked:
            raise InvalidToken("session revoked while the body arrived")
        if identity.expires_at <= time.time():
            raise InvalidToken("expired while the body arrived")

    async def read_whole_body(self, receive: Receive, headers: RequestHeaders) -> bytes | None:
        """The whole body, at most max_body bytes; None when there is none."""
        declared = headers.content_length
        if declared is not None:
            # 1*DIGIT after the parser's checks; the whitespace around a field value is
            # not part of it (RFC 9110 5.5).
            digits = declared.strip(b" \t")
            if not digits.isdigit():
                raise MalformedRequest("Content-Length is not a number.")
            length = int(digits)
            if length > self._max_body:
                raise BodyTooLarge()
            if length == 0:
                return None
        elif headers.transfer_encoding is None:
            return None
        return await self._read_all(receive)

    @staticmethod
    async def _relay(
        status: int, upstream_headers: list[tuple[bytes, bytes]], exchange: Exchange
    ) -> None:
        headers = []
        for name, value in upstream_headers:
            lower = name.lower()
            if lower not in RESPONSE_DROPPED and not lower.startswith(RESPONSE_DROPPED_PREFIXES):
                headers.append((lower, value))
        await exchange.start(status, headers)

    async def _read_all(self, receive: Receive) -> bytes:
        parts = [chunk async for chunk in self._stream(receive)]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def _stream(self, receive: Receive) -> AsyncIterator[bytes]:
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise BodyTooLarge()
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
