"""The gateway's upstream client: the instances of each service, balanced.

pool.py holds one instance's keep-alive connections (httptools, asyncio); this module
picks the instance, retries once elsewhere when that is safe, and feeds each instance's
circuit breaker (docs/decisions/gateway-balancing.md, gateway-upstream-client.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from api_gateway.breaker import STALL_SECONDS
from api_gateway.connection import (
    ConnectFailed,
    UpstreamBroken,
    UpstreamError,
    UpstreamStalled,
    UpstreamTimedOut,
)
from api_gateway.metrics import UPSTREAM_RESENT
from api_gateway.pool import Body, ConnectionPool, UpstreamResponse
from shop_common.retried_writes import RETRY_HEADER

# The mark of a write sent again; clients' own X-Gateway-* headers are dropped before
# forwarding, so only the gateway can set it.
RETRY_MARK = (RETRY_HEADER, b"1")
SETTLE_LIMIT = 64 * 1024  # GET bodies up to this size are buffered whole (Upstream._attempt)

__all__ = ["Body", "ConnectionPool", "Upstream", "UpstreamResponse", "fetch"]


class Upstream:
    """The instances of one service: the least busy usable one first, in turn on a tie.

    A request whose connection failed before anything was sent is retried once on
    another instance; a GET (the gateway forwards HEAD as GET) also when the instance
    broke before its response head, or stalled (no answer within STALL_SECONDS while it
    answered nothing else: a frozen process). See docs/decisions/gateway-balancing.md.
    A `resendable` write whose instance broke before its response head is sent again too,
    marked with X-Gateway-Retry: its service answers it from the first attempt if that
    one committed (shop_common.retried_writes, docs/decisions/retried-writes.md).
    """

    def __init__(self, name: str, urls: Sequence[str]) -> None:
        if not urls:
            raise ValueError(f"{name}: no upstream URL")
        self.name = name
        self.pools = [ConnectionPool(url) for url in urls]
        self._next = 0

    def _pick(self, exclude: ConnectionPool | None = None) -> ConnectionPool | None:
        """Usable instances first; if none, a reachable one that failed its probe (it may
        still answer); None when every breaker is open: fail fast."""
        pools = self.pools
        start = self._next
        self._next = (start + 1) % len(pools)
        best: ConnectionPool | None = None
        best_rank: tuple[int, int] | None = None
        for offset in range(len(pools)):
            pool = pools[(start + offset) % len(pools)]
            health = pool.health
            if pool is exclude or health.open:
                continue
            rank = (health.not_ready, health.outstanding)
            if best_rank is None or rank < best_rank:
                best, best_rank = pool, rank
        return best

    async def request(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: Body,
        *,
        timeout: float,
        body_length: int | None = None,
        resendable: bool = False,
    ) -> UpstreamResponse:
        pool = self._pick()
        if pool is None:
            raise ConnectFailed(f"{self.name}: every instance's circuit is open")
        # Only a GET can be given up on a frozen instance and sent again elsewhere.
        stall = STALL_SECONDS if method == b"GET" and body is None and len(self.pools) > 1 else None
        try:
            return await self._attempt(
                pool, method, target, headers, body, timeout, body_length, stall
            )
        except (ConnectFailed, UpstreamTimedOut, UpstreamBroken) as exc:
            resend = resendable and _resendable(exc, body)
            if not (resend or _retryable(exc, method, body)):
                raise
            other = self._pick(exclude=pool)
            if other is None:
                raise
            if resend:
                UPSTREAM_RESENT.labels(self.name).inc()
                headers = [*headers, RETRY_MARK]
        return await self._attempt(other, method, target, headers, body, timeout, body_length, None)

    @staticmethod
    async def _attempt(
        pool: ConnectionPool,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: Body,
        timeout: float,
        body_length: int | None,
        stall_after: float | None,
    ) -> UpstreamResponse:
        response = await pool.request(
            method,
            target,
            headers,
            body,
            timeout=timeout,
            body_length=body_length,
            stall_after=stall_after,
        )
        if method == b"GET" and body is None:
            # A small GET response is taken whole before the client sees any of it, so an
            # instance dying mid-body is one more retryable failure, not a cut response.
            try:
                await response.settle(timeout, SETTLE_LIMIT)
            except UpstreamError as exc:
                response.release()
                pool.health.failed()
                if isinstance(exc, UpstreamBroken):
                    exc.before_response = True  # nothing of it reached the client
                raise
        return response

    def close(self) -> None:
        for pool in self.pools:
            pool.close()


def _retryable(exc: UpstreamError, method: bytes, body: Body) -> bool:
    if exc.nothing_sent:
        return True  # the instance never saw the request
    if method != b"GET" or body is not None:
        return False
    if isinstance(exc, UpstreamStalled):
        return True  # a frozen instance: a GET changes nothing, another may answer it
    # A timeout is not retried: the instance may still be working on it, and a second
    # wait would double the client's.
    return isinstance(exc, UpstreamBroken) and exc.before_response


def _resendable(exc: UpstreamError, body: Body) -> bool:
    """A write the instance may have committed before dying: sent again, marked."""
    return (
        isinstance(exc, UpstreamBroken)
        and exc.before_response
        and (body is None or isinstance(body, bytes))
    )


async def fetch(
    pool: ConnectionPool | Upstream,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    *,
    timeout: float,
    limit: int = 1024 * 1024,
) -> tuple[int, bytes]:
    """GET a small document: (status, body); UpstreamBroken when the body exceeds limit."""
    response = await pool.request(b"GET", target, headers, None, timeout=timeout)
    try:
        parts: list[bytes] = []
        size = 0
        while chunk := await response.read(timeout):
            size += len(chunk)
            if size > limit:
                raise UpstreamBroken(f"response over {limit} bytes")
            parts.append(chunk)
        return response.status, b"".join(parts)
    finally:
        response.release()
