"""GET /ready: can this gateway serve? The state of each upstream, instance and Redis.

The gateway's readiness is its own: it is ready once the auth-service JWKS was loaded
(before that no token can be checked; a probe round that finds no keys fetches them).
An upstream with no ready instance does not make it unready: that service's routes
answer 503 at once while the others keep working (on Kubernetes every gateway pod would
otherwise leave the Service together). Each instance's own /ready is probed (no
credential needed there); a service is "ok" when all its instances answer 200,
"degraded" when some do, "unavailable" when none. With REDIS_URL, "redis" is "ok" or
"degraded" (limits in-process, revocations from auth-service). /ready answers from the
last probe round, waiting at most FRESH_WAIT_SECONDS for a newer one. Until
everything was ready once, the poller probes every STARTUP_PROBE_SECONDS, so a system
that is starting is seen ready as soon as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from api_gateway.connection import UpstreamError
from api_gateway.upstream import ConnectionPool, Upstream, fetch
from shop_common.shutdown import draining

if TYPE_CHECKING:
    from api_gateway.redis_link import RedisLink

PROBE_TIMEOUT_CAP = 2.0
# /ready waits this long at most for a fresh round, then answers from the last one: a
# probe round stuck behind a frozen instance never delays the answer.
FRESH_WAIT_SECONDS = 0.25
# While starting (never ready yet, at most STARTUP_WINDOW_SECONDS): probing this often
# costs a refused connect or a /ready per upstream instance.
STARTUP_PROBE_SECONDS = 0.1
STARTUP_WINDOW_SECONDS = 60.0
READY_STATES = frozenset({"ok", "degraded"})
logger = logging.getLogger(__name__)


class Readiness:
    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        *,
        cache_seconds: float,
        timeout: float,
        redis: RedisLink | None = None,
        keys_loaded: Callable[[], bool] | None = None,
        load_keys: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._upstreams = upstreams
        self._keys_loaded = keys_loaded
        self._load_keys = load_keys
        self._redis = redis
        self._cache_seconds = cache_seconds
        self._timeout = min(timeout, PROBE_TIMEOUT_CAP)
        self._report: dict[str, Any] | None = None
        self._checked_at = 0.0
        self._inflight: asyncio.Task[dict[str, Any]] | None = None

    async def report(self) -> tuple[bool, dict[str, Any]]:
        """(ready, body); concurrent callers share one round of probes."""
        if draining():
            return False, {"status": "draining", "checks": {}}
        report = self._report
        if report is None or time.monotonic() - self._checked_at > self._cache_seconds:
            if self._inflight is None:
                self._inflight = asyncio.create_task(self._probe_all(), name="ready-probe")
            try:
                report = await asyncio.wait_for(asyncio.shield(self._inflight), FRESH_WAIT_SECONDS)
            except TimeoutError:
                report = self._report or {"status": "starting", "checks": {}, "instances": {}}
        return report["status"] == "ready", report

    async def keep_polling(self, interval: float) -> None:
        """Probe every instance each `interval` seconds, for the balancer's sake; more
        often while the system starts, until it was ready once."""
        starting_until = time.monotonic() + STARTUP_WINDOW_SECONDS
        while True:
            try:
                if self._inflight is None:
                    self._inflight = asyncio.create_task(self._probe_all(), name="ready-probe")
                report = await asyncio.shield(self._inflight)
                if all(state in READY_STATES for state in report["checks"].values()):
                    starting_until = 0.0  # everything answered once
            except Exception:  # a probe round never stops the poller
                logger.exception("readiness probe round failed")
            starting = time.monotonic() < starting_until
            await asyncio.sleep(min(interval, STARTUP_PROBE_SECONDS) if starting else interval)

    async def _probe_all(self) -> dict[str, Any]:
        try:
            names = list(self._upstreams)
            results = await asyncio.gather(
                *(self._probe_service(self._upstreams[name]) for name in names)
            )
            checks = {name: state for name, (state, _) in zip(names, results, strict=True)}
            instances = {name: each for name, (_, each) in zip(names, results, strict=True)}
            if self._keys_loaded is not None:
                if not self._keys_loaded():
                    await self._try_loading_keys(checks)
                checks["auth-keys"] = "ok" if self._keys_loaded() else "unavailable"
            if self._redis is not None:
                checks["redis"] = await self._redis.check()
            ready = checks.get("auth-keys", "ok") == "ok"
            report = {
                "status": "ready" if ready else "unavailable",
                "checks": checks,
                "instances": instances,
            }
            self._report, self._checked_at = report, time.monotonic()
            return report
        finally:
            self._inflight = None

    async def _try_loading_keys(self, checks: Mapping[str, str]) -> None:
        """Fetch the keys now, once every upstream answered its probe: the background
        refetch may be a second away, and the probe closed the auth breaker again."""
        if self._load_keys is None or not all(state in READY_STATES for state in checks.values()):
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._load_keys(), self._timeout)

    async def _probe_service(self, upstream: Upstream) -> tuple[str, dict[str, str]]:
        states = await asyncio.gather(*(self._probe(pool) for pool in upstream.pools))
        for pool, state in zip(upstream.pools, states, strict=True):
            pool.health.probed(state)
        each = {pool.url: state for pool, state in zip(upstream.pools, states, strict=True)}
        up = sum(state == "ok" for state in states)
        if up == len(states):
            return "ok", each
        return ("degraded" if up else "unavailable"), each

    async def _probe(self, pool: ConnectionPool) -> str:
        try:
            status, _ = await fetch(pool, b"/ready", [], timeout=self._timeout, limit=65536)
        except UpstreamError:
            return "unavailable"
        return "ok" if status == 200 else "not_ready"

    async def close(self) -> None:
        task = self._inflight
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
