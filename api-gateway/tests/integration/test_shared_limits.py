"""Rate limits in Redis: shared by gateway replicas, and in-process when Redis goes away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from shop_common.testing import redis_url

pytestmark = pytest.mark.anyio

LOGIN = "/auth/login"


def isolated(**overrides: Any) -> dict[str, Any]:
    """Settings for one test's own keys on the shared Redis."""
    run = uuid.uuid4().hex
    return {
        "rate_limit_key_prefix": f"test:{run}:limits",
        "revocation_redis_key": f"test:{run}:revoked",
        **overrides,
    }


def login(email: str) -> dict[str, str]:
    return {"email": email, "password": "wrong password"}


@pytest.mark.redis
async def test_two_gateways_on_one_redis_share_their_limits(make_settings, open_gateway) -> None:
    settings = make_settings(
        **isolated(
            redis_url=redis_url(),
            rate_limit_per_address="3 per minute",
            rate_limit_login_per_email="2 per minute",
            rate_limit_login_per_address="100 per minute",
        )
    )
    target = f"{uuid.uuid4().hex}@example.com"
    async with open_gateway(settings) as first, open_gateway(settings) as second:
        reads = [
            (await first.get("/products")).status_code,
            (await second.get("/products")).status_code,
            (await first.get("/products")).status_code,
            (await second.get("/products")).status_code,
        ]
        failures = [
            (await first.post(f"{LOGIN}?status=401", json=login(target))).status_code,
            (await second.post(f"{LOGIN}?status=401", json=login(target))).status_code,
        ]
        after = (await first.post(LOGIN, json=login(target))).status_code
    assert reads == [200, 200, 200, 429]
    assert failures == [401, 401]
    assert after == 429


@pytest.mark.redis
async def test_the_counters_live_in_redis_under_the_configured_prefix(
    make_settings, open_gateway
) -> None:
    options = isolated(redis_url=redis_url())
    async with open_gateway(make_settings(**options)) as client:
        assert (await client.get("/products")).status_code == 200
    redis = Redis.from_url(redis_url())
    try:
        keys = [key async for key in redis.scan_iter(f"{options['rate_limit_key_prefix']}:*")]
        assert keys
        await redis.delete(*keys)
    finally:
        await redis.aclose()


class CuttableProxy:
    """A TCP relay in front of Redis that a test can cut and restore on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except BaseException:
            writer.transport.abort()
            raise
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@contextlib.asynccontextmanager
async def proxy_to_redis() -> AsyncIterator[tuple[CuttableProxy, str]]:
    parts = urlsplit(redis_url())
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    await proxy.start()
    try:
        yield proxy, f"redis://127.0.0.1:{proxy.port}{parts.path}"
    finally:
        with contextlib.suppress(Exception):
            await proxy.cut()


@pytest.mark.redis
async def test_a_redis_outage_falls_back_to_in_process_limits_and_recovers(
    make_settings, open_gateway, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("api_gateway.redis_link.RETRY_SECONDS", 0.1)
    caplog.set_level(logging.INFO, logger="api_gateway.redis_link")
    async with proxy_to_redis() as (proxy, url):
        # Per hour: a sliding-window refusal stands until the current fixed window ends,
        # and a per-minute window ending during the outage (1 s of it) made this flaky.
        settings = make_settings(**isolated(redis_url=url, rate_limit_per_address="3 per hour"))
        async with open_gateway(settings) as client:
            assert (await client.get("/ready")).json()["checks"]["redis"] == "ok"
            assert (await client.get("/products")).status_code == 200
            await proxy.cut()
            started = asyncio.get_running_loop().time()
            # In-process from the first failed call on: counts start afresh there.
            statuses = [(await client.get("/products")).status_code for _ in range(4)]
            elapsed = asyncio.get_running_loop().time() - started
            ready = await client.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["checks"]["redis"] == "degraded"
            await proxy.start()  # Redis is back, on the same port
            for _ in range(50):
                if (await client.get("/ready")).json()["checks"]["redis"] == "ok":
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the gateway never went back to Redis")
            # The refusal stands until its Retry-After, wherever it was counted...
            assert (await client.get("/products")).status_code == 429
            # ...and new counts go to Redis again.
            assert (await client.post(LOGIN, json=login("a@example.com"))).status_code == 200
        async with open_gateway(
            make_settings(**{**settings.model_dump(), "redis_url": redis_url()})
        ) as replica:
            # Redis saw one read before the outage, none during it.
            shared = [(await replica.get("/products")).status_code for _ in range(3)]
        redis = Redis.from_url(redis_url())
        try:
            keys = [key async for key in redis.scan_iter(f"{settings.rate_limit_key_prefix}:*")]
        finally:
            await redis.aclose()
    assert statuses == [200, 200, 200, 429]
    assert elapsed < 1.0  # at most one short Redis timeout, not one per request
    assert shared == [200, 200, 429]
    assert any(b"login-address" in key for key in keys)
    records = [r for r in caplog.records if r.name == "api_gateway.redis_link"]
    assert [r.levelname for r in records] == ["WARNING", "INFO"]  # once down, once back
