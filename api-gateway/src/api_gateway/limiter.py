"""Rate limits with the `limits` package: in Redis when REDIS_URL is set, else in-process.

Which algorithm, and why (docs/decisions/gateway-rate-limits.md): a moving window for
the login and register limits (small counts, exact: once reached, refused until the
oldest counted event leaves the window, and Retry-After says exactly when), and a
sliding-window counter for the general per-address limit (two counters per address
whatever the rate, where a moving window would keep one timestamp per request).

A Redis failure falls back to the in-process storage for that very call and every later
one until Redis answers again (redis_link.py). A refusal is remembered locally until its
Retry-After, so a client hammering past its limit costs a dict lookup, not a round trip.
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from limits import RateLimitItem, RateLimitItemPerSecond, strategies
from limits.aio import strategies as aio_strategies
from limits.aio.storage import RedisStorage
from limits.storage import MemoryStorage

from api_gateway.ratelimit import Rate

if TYPE_CHECKING:
    from api_gateway.redis_link import RedisLink

SWEEP_SECONDS = 1.0
MAX_REMEMBERED_REFUSALS = 10_000


class Strategy(StrEnum):
    MOVING_WINDOW = "moving-window"
    SLIDING_WINDOW_COUNTER = "sliding-window-counter"


@dataclass(frozen=True, slots=True)
class Limit:
    """One named limit: `name` is part of its keys and of the logs."""

    name: str
    item: RateLimitItem
    strategy: Strategy

    @classmethod
    def of(cls, name: str, rate: Rate, strategy: Strategy) -> Limit:
        return cls(name, RateLimitItemPerSecond(rate.limit, rate.period_seconds), strategy)


class InProcessStorage(MemoryStorage):
    """limits' in-process storage, with expired entries swept inline at most once a second.

    The synchronous storage and strategies: nothing in-process waits, and each await
    layer costs (7-10 µs per hit through the asyncio ones, 3-5 µs here). The library
    starts a sweep (a thread here, a task in its asyncio twin) on almost every hit, each
    visiting every key: measured 78 µs per hit with 1,000 clients, 195 µs with 5,000.
    Counting itself is unchanged; only the sweep's schedule is (a unit test checks that
    the hook still replaces the library's).
    """

    _next_sweep = 0.0
    sweeps = 0

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - the hook's name
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            self.sweep()

    def sweep(self) -> None:
        self.sweeps += 1
        now = time.time()
        for key, events in list(self.events.items()):
            # Newest first; keep the entries that have not expired.
            keep = bisect.bisect_left(events, -now, key=lambda event: -event.expiry)
            if keep:
                self.events[key] = events[:keep]
            else:
                del self.events[key]
                self.locks.pop(key, None)
        for key, expires_at in list(self.expirations.items()):
            if expires_at <= now:
                self.storage.pop(key, None)
                del self.expirations[key]
                self.locks.pop(key, None)


def _limits_uri(redis_url: str) -> str:
    # limits only reads the scheme here: the connections come from our pool.
    scheme = urlsplit(redis_url).scheme
    return {"rediss": "async+rediss://", "unix": "async+redis+unix://"}.get(
        scheme, "async+redis://"
    )


class Limiter:
    def __init__(self, redis: RedisLink | None, *, key_prefix: str) -> None:
        self.memory = InProcessStorage()
        self._in_process: dict[Strategy, strategies.RateLimiter] = {
            Strategy.MOVING_WINDOW: strategies.MovingWindowRateLimiter(self.memory),
            Strategy.SLIDING_WINDOW_COUNTER: strategies.SlidingWindowCounterRateLimiter(
                self.memory
            ),
        }
        self._redis = redis
        self._shared: dict[Strategy, aio_strategies.RateLimiter] | None = None
        if redis is not None:
            storage = RedisStorage(
                _limits_uri(redis.url),
                implementation="redispy",
                key_prefix=key_prefix,
                connection_pool=redis.client.connection_pool,  # type: ignore[arg-type]
            )
            self._shared = {
                Strategy.MOVING_WINDOW: aio_strategies.MovingWindowRateLimiter(storage),
                Strategy.SLIDING_WINDOW_COUNTER: aio_strategies.SlidingWindowCounterRateLimiter(
                    storage
                ),
            }
        # (limit name, key) -> the wall time a refused client may try again.
        self._refused: dict[tuple[str, str], float] = {}

    async def hit(self, limit: Limit, key: str) -> int | None:
        """Count one event: None when allowed, else the seconds to wait (Retry-After)."""
        return await self._consult(limit, key, count=True)

    async def test(self, limit: Limit, key: str) -> int | None:
        """As `hit`, counting nothing: None while the limit is not reached."""
        return await self._consult(limit, key, count=False)

    async def _consult(self, limit: Limit, key: str, *, count: bool) -> int | None:
        refused_key = (limit.name, key)
        until = self._refused.get(refused_key)
        if until is not None:
            wait = until - time.time()
            if wait > 0:
                return retry_after(wait)
            del self._refused[refused_key]
        shared, redis = self._shared, self._redis
        if shared is not None and redis is not None and redis.up:
            try:
                return await self._ask_shared(shared[limit.strategy], limit, key, count)
            except redis.errors as exc:
                redis.failed(exc)
        return self._ask_in_process(self._in_process[limit.strategy], limit, key, count)

    async def _ask_shared(
        self, limiter: aio_strategies.RateLimiter, limit: Limit, key: str, count: bool
    ) -> int | None:
        if count:
            allowed = await limiter.hit(limit.item, limit.name, key)
        else:
            allowed = await limiter.test(limit.item, limit.name, key)
        if allowed:
            return None
        stats = await limiter.get_window_stats(limit.item, limit.name, key)
        return self._refused_until(limit.name, key, stats.reset_time)

    def _ask_in_process(
        self, limiter: strategies.RateLimiter, limit: Limit, key: str, count: bool
    ) -> int | None:
        if count:
            allowed = limiter.hit(limit.item, limit.name, key)
        else:
            allowed = limiter.test(limit.item, limit.name, key)
        if allowed:
            return None
        stats = limiter.get_window_stats(limit.item, limit.name, key)
        return self._refused_until(limit.name, key, stats.reset_time)

    def _refused_until(self, name: str, key: str, until: float) -> int:
        self._remember(name, key, until)
        return retry_after(until - time.time())

    def _remember(self, name: str, key: str, until: float) -> None:
        refused = self._refused
        if len(refused) >= MAX_REMEMBERED_REFUSALS:
            now = time.time()
            for stale in [k for k, at in refused.items() if at <= now]:
                del refused[stale]
            if len(refused) >= MAX_REMEMBERED_REFUSALS:
                refused.clear()  # only a shortcut: the storage still refuses them
        refused[(name, key)] = until


def retry_after(seconds: float) -> int:
    """Retry-After in whole seconds, at least 1."""
    return max(1, math.ceil(seconds))
