"""Revoked sessions, kept in memory and refreshed every second by a background task.

The request path only asks `sid in revoked` (a dict lookup): no round trip. The task
reads auth-service's sorted set in Redis (member sid, score revoked_at; the format in
docs/decisions/auth-revocation.md) and, when Redis is not configured or not answering,
or no revocation publisher is alive (its heartbeat key is missing), polls auth-service's
`GET /internal/revocations?since=` instead. A revoked sid is remembered for the
access-token lifetime plus a margin: no token of that session can live longer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson

if TYPE_CHECKING:
    from api_gateway.redis_link import RedisLink

# Scores are revoked_at stamped by auth-service when its transaction ran, not when it
# committed: reading again this far behind the newest one seen catches late commits
# (auth-service's publisher uses the same overlap).
OVERLAP_SECONDS = 60.0
# Clock skew between hosts and the verifier's leeway.
MARGIN_SECONDS = 120.0
PRUNE_SECONDS = 10.0
MAX_SID_LENGTH = 128
logger = logging.getLogger(__name__)
Source = Literal["redis", "auth-service"]


class RevokedSessions:
    """sid -> when it may be forgotten (epoch seconds)."""

    def __init__(self, retention: float) -> None:
        self.retention = retention
        self._forget_at: dict[str, float] = {}

    def __contains__(self, sid: object) -> bool:
        return sid in self._forget_at

    def __len__(self) -> int:
        return len(self._forget_at)

    def add(self, entries: Iterable[tuple[str, float]]) -> int:
        """(sid, revoked_at) pairs; returns how many sids were new."""
        added = 0
        forget_at = self._forget_at
        for sid, revoked_at in entries:
            until = revoked_at + self.retention
            if sid not in forget_at:
                added += 1
                forget_at[sid] = until
            elif forget_at[sid] < until:
                forget_at[sid] = until
        return added

    def prune(self, now: float) -> None:
        for sid in [sid for sid, until in self._forget_at.items() if until <= now]:
            del self._forget_at[sid]


class RevocationFeed:
    def __init__(
        self,
        revoked: RevokedSessions,
        *,
        poll_auth_service: Callable[[str], Awaitable[bytes]],
        redis: RedisLink | None,
        redis_key: str,
        interval: float,
    ) -> None:
        self.revoked = revoked
        self._poll_auth_service = poll_auth_service
        self._redis = redis
        self._key = redis_key
        self._heartbeat_key = f"{redis_key}:publisher"
        self._interval = interval
        self._newest_score: float | None = None  # newest revoked_at read from Redis
        self._as_of: str | None = None  # auth-service's as_of of the last poll
        self._pruned_at = 0.0
        self.source: Source | None = None  # where the last successful read came from
        self._failing: set[Source] = set()

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self._interval)

    async def tick(self) -> None:
        """One read; never raises (a failure is logged once per outage and retried)."""
        now = time.time()
        if now - self._pruned_at >= PRUNE_SECONDS:
            self.revoked.prune(now)
            self._pruned_at = now
        redis = self._redis
        if redis is not None and redis.up:
            try:
                publisher_alive = await self._read_redis(redis, now)
            except redis.errors as exc:
                redis.failed(exc)
            except Exception as exc:  # a malformed entry: the poll below still runs
                self._failed("redis", exc)
            else:
                self._recovered("redis")
                if publisher_alive:
                    return
        try:
            await self._read_auth_service(now)
        except Exception as exc:  # down, or an answer that is not the expected document
            self._failed("auth-service", exc)
        else:
            self._recovered("auth-service")

    async def _read_redis(self, redis: RedisLink, now: float) -> bool:
        """New entries of the sorted set; True when a publisher keeps it up to date."""
        horizon = now - self.revoked.retention
        since = horizon if self._newest_score is None else self._newest_score - OVERLAP_SECONDS
        async with redis.client.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(self._key, max(since, horizon), "+inf", withscores=True)
            pipe.exists(self._heartbeat_key)
            entries, heartbeat = await pipe.execute()
        fresh = [(_text(member), float(score)) for member, score in entries]
        if fresh:
            newest = max(score for _, score in fresh)
            self._newest_score = max(newest, self._newest_score or newest)
        self._learn(fresh, "redis")
        self.source = "redis"
        return bool(heartbeat)

    async def _read_auth_service(self, now: float) -> None:
        if self._as_of is None:
            since = now - self.revoked.retention
        else:
            since = _epoch(self._as_of) - OVERLAP_SECONDS
        document = orjson.loads(await self._poll_auth_service(_rfc3339(since)))
        entries = [
            (item["sid"], _epoch(item["revoked_at"])) for item in document["revoked_sessions"]
        ]
        self._as_of = str(document["as_of"])
        self._learn(entries, "auth-service")
        self.source = "auth-service"

    def _learn(self, entries: list[tuple[str, float]], source: Source) -> None:
        valid = [
            (sid, at) for sid, at in entries if isinstance(sid, str) and len(sid) <= MAX_SID_LENGTH
        ]
        added = self.revoked.add(valid)
        if added:
            logger.info("sessions revoked", extra={"count": added, "source": source})

    def _failed(self, source: Source, exc: Exception) -> None:
        if source not in self._failing:
            self._failing.add(source)
            logger.warning(
                "cannot read revocations; retrying every %g s",
                self._interval,
                extra={"source": source, "error": f"{type(exc).__name__}: {exc}"},
            )

    def _recovered(self, source: Source) -> None:
        if source in self._failing:
            self._failing.discard(source)
            logger.info("revocations are read again", extra={"source": source})


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _epoch(rfc3339: Any) -> float:
    return datetime.fromisoformat(str(rfc3339)).timestamp()


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
