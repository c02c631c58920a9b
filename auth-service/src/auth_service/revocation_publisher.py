"""The revocation publisher: copies revoked sessions from the database into Redis.

Gateways read the sorted set it keeps (member: sid, score: revoked_at in epoch seconds)
and refuse access tokens whose `sid` is in it; docs/decisions/auth-revocation.md has the
format. The database stays the only truth: this task only copies, so any write it loses
(Redis down, Redis restarted empty) is repaired by a later tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Literal, Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service import repository
from auth_service.db import utc_now

logger = logging.getLogger(__name__)

# Each tick re-reads this far behind the newest revoked_at it pushed: a transaction that
# stamped revoked_at earlier but committed later (lock waits, another replica's clock) is
# still caught. Gateways reading by score use the same overlap.
OVERLAP = timedelta(seconds=60)
# A full copy of the retention window this often, and after every failure: it refills a
# Redis that restarted empty without our connection noticing.
RESYNC_SECONDS = 60.0
HEARTBEAT_TTL_SECONDS = 10
REDIS_TIMEOUT_SECONDS = 1.0

Problem = Literal["redis", "database", "unexpected"]


class RevocationSink(Protocol):
    """Where revocations go; Redis in production."""

    async def publish(
        self, entries: Sequence[tuple[str, float]], *, prune_before: float, as_of: float
    ) -> None: ...

    async def aclose(self) -> None: ...


class RedisRevocationSink:
    """The sorted set the gateways poll, plus a heartbeat key that says a publisher runs."""

    def __init__(self, client: Redis, key: str) -> None:
        self.client = client
        self.key = key
        self.heartbeat_key = f"{key}:publisher"

    @classmethod
    def from_url(cls, url: str, key: str) -> RedisRevocationSink:
        # Short timeouts and no client-side retries: the publisher's loop is the retry,
        # and a tick must not hang while Redis does not answer.
        client = Redis.from_url(
            url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, key)

    async def publish(
        self, entries: Sequence[tuple[str, float]], *, prune_before: float, as_of: float
    ) -> None:
        # One round trip; every command is idempotent, so no MULTI is needed and any
        # number of replicas may send the same entries.
        async with self.client.pipeline(transaction=False) as pipe:
            if entries:
                pipe.zadd(self.key, dict(entries))
            pipe.zremrangebyscore(self.key, "-inf", f"({prune_before!r}")
            pipe.set(self.heartbeat_key, repr(as_of), ex=HEARTBEAT_TTL_SECONDS)
            await pipe.execute()

    async def aclose(self) -> None:
        await self.client.aclose()


class RevocationPublisher:
    """Every `interval` seconds, pushes the sessions revoked since the last push."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sink: RevocationSink,
        *,
        retention: timedelta,
        interval: float,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.sink = sink
        self.retention = retention
        self.interval = interval
        self.clock = clock
        self.monotonic = monotonic
        self.problem: Problem | None = None
        self.published = False  # at least one successful push
        self._newest: datetime | None = None  # None: the next tick is a full resync
        self._last_resync = 0.0
        self._pushed: dict[uuid.UUID, datetime] = {}

    @property
    def state(self) -> Literal["ok", "degraded"]:
        """For /ready: degraded (not failing) while revocations do not reach Redis."""
        return "ok" if self.published and self.problem is None else "degraded"

    async def run(self) -> None:
        while True:
            await self.tick_safely()
            await asyncio.sleep(self.interval)

    async def tick_safely(self) -> None:
        """One tick that never raises: a failure is logged once per outage and retried."""
        try:
            await self.tick()
        except RedisError as exc:
            self._failed("redis", exc)
        except (SQLAlchemyError, OSError) as exc:
            # redis-py wraps its socket errors, so an OSError is the database driver's.
            self._failed("database", exc)
        except Exception as exc:  # the task must outlive any failure, a bug included
            self._failed("unexpected", exc)
        else:
            if self.problem is not None:
                logger.info("publishing revocations again", extra={"after": self.problem})
            self.problem = None

    async def tick(self) -> None:
        now = self.clock()
        horizon = now - self.retention
        if self._newest is None or self.monotonic() - self._last_resync >= RESYNC_SECONDS:
            since, self._pushed, full = horizon, {}, True
        else:
            since, full = max(self._newest - OVERLAP, horizon), False
        async with self.sessions() as session:
            rows = await repository.list_revoked_sessions(session, since=since)
        fresh = [(sid, at) for sid, at in rows if sid not in self._pushed]
        await self.sink.publish(
            [(str(sid), at.timestamp()) for sid, at in fresh],
            prune_before=horizon.timestamp(),
            as_of=now.timestamp(),
        )
        self.published = True
        if full:
            self._last_resync = self.monotonic()
        self._pushed.update(fresh)
        if rows:  # ordered by revoked_at
            self._newest = max(rows[-1][1], self._newest or rows[-1][1])
        elif self._newest is None:
            self._newest = since
        # What the next query cannot return any more needs no memory.
        floor = max(self._newest - OVERLAP, horizon)
        self._pushed = {sid: at for sid, at in self._pushed.items() if at > floor}

    def _failed(self, problem: Problem, exc: Exception) -> None:
        self._newest = None  # whatever was lost, the next success copies it all again
        if self.problem == problem:
            return
        self.problem = problem
        message = f"cannot publish revocations ({problem}); retrying every {self.interval:g} s"
        if problem == "unexpected":
            logger.exception(message)
        elif problem == "redis":
            logger.warning(message, extra={"error": f"{type(exc).__name__}: {exc}"})
        else:
            # SQLAlchemy's messages carry whole statements; the type says enough here.
            logger.warning(message, extra={"error": type(exc).__name__})
