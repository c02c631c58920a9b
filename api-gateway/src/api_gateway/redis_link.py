"""The gateway's one Redis connection pool, and whether Redis is answering.

Rate limits and revocations both use it. A failure (refused, timed out, broken) marks
Redis down at once: limits fall back to in-process, revocations to the auth-service poll,
`/ready` says "degraded" (still 200). One warning is logged per outage, and a background
task pings every `retry_seconds` until Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

# redis-py wraps socket errors in its own, but a failure inside a timeout or the
# event loop can surface as one of these.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError, asyncio.TimeoutError)
RETRY_SECONDS = 1.0
logger = logging.getLogger(__name__)
RedisState = Literal["ok", "degraded"]


class RedisLink:
    # What a call through the link raises when Redis does not answer. An attribute, so
    # the modules that catch it need not import redis-py (~7 MB) when REDIS_URL is unset.
    errors = REDIS_ERRORS

    def __init__(self, url: str, *, timeout: float, retry_seconds: float = RETRY_SECONDS) -> None:
        self.url = url
        # Short timeouts; one immediate retry only for a broken pooled connection (Redis
        # restarted), never for a timeout: a slow Redis must not slow requests twice.
        self.client: Redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self.up = True
        self._retry_seconds = retry_seconds
        self._probe: asyncio.Task[None] | None = None

    @property
    def state(self) -> RedisState:
        return "ok" if self.up else "degraded"

    def failed(self, exc: BaseException) -> None:
        """Redis did not answer: mark it down (logged once) and start retrying."""
        if not self.up:
            return
        self.up = False
        logger.warning(
            "Redis is unavailable: rate limits are in-process and revocations come from "
            "auth-service until it answers again",
            extra={"error": f"{type(exc).__name__}: {exc}"},
        )
        if self._probe is None:
            self._probe = asyncio.create_task(self._until_back(), name="redis-probe")

    async def check(self) -> RedisState:
        """For /ready: a PING while Redis is believed up (a failure marks it down)."""
        if self.up:
            try:
                await self.client.ping()
            except REDIS_ERRORS as exc:
                self.failed(exc)
        return self.state

    async def _until_back(self) -> None:
        try:
            while True:
                await asyncio.sleep(self._retry_seconds)
                try:
                    await self.client.ping()
                except REDIS_ERRORS:
                    continue
                self.up = True
                logger.info("Redis answers again: shared rate limits and revocations resume")
                return
        finally:
            self._probe = None

    async def close(self) -> None:
        probe = self._probe
        if probe is not None:
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)
        await self.client.aclose()
