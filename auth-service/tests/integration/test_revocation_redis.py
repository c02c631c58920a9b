"""Revocations reach the Redis sorted set the gateways read (real Redis: TEST_REDIS_URL)."""

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import parse_url

from shop_common.testing import random_email, redis_url
from testsupport.processes import free_port

pytestmark = pytest.mark.anyio
ADMIN_PASSWORD = "admin password 1"


def sid(tokens: dict[str, Any]) -> str:
    value: str = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]
    return value


@pytest.fixture
async def redis_server() -> AsyncIterator[tuple[str, Redis, str]]:
    """The test server's URL, a client, and a key no other test uses (deleted afterwards)."""
    url = redis_url()
    key = f"test:{secrets.token_hex(6)}:revoked-sessions"
    client = Redis.from_url(url, decode_responses=True)
    try:
        yield url, client, key
    finally:
        await client.delete(key, f"{key}:publisher")
        await client.aclose()


# A timeout against a hung test, not a speed claim (speed is `make bench`'s business).
EVENTUALLY_SECONDS = 30.0


async def wait_for_members(client: Redis, key: str, wanted: set[str]) -> None:
    """Until every wanted sid is in the set; a failure only if that never happens."""
    deadline = time.monotonic() + EVENTUALLY_SECONDS
    while not wanted <= set(await client.zrange(key, 0, -1)):
        assert time.monotonic() < deadline, f"{wanted} never reached {key}"
        await asyncio.sleep(0.05)


@pytest.mark.redis
async def test_a_logout_puts_its_session_in_the_sorted_set_scored_by_its_time(
    start_api, redis_server
):
    url, client, key = redis_server
    started = time.time()
    async with start_api(redis_url=url, revocation_redis_key=key) as api:
        _, tokens = await api.new_user()
        _, alive = await api.new_user()
        logged_out = time.time()
        await api.client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        await wait_for_members(client, key, {sid(tokens)})
        seen = time.time()
        score = await client.zscore(key, sid(tokens))
        # Scored by when it was revoked (a second's slack for the clock's rounding).
        assert score is not None and logged_out - 1 <= score <= seen + 1
        assert await client.zscore(key, sid(alive)) is None
        heartbeat = await client.get(f"{key}:publisher")
        assert heartbeat is not None and started - 1 <= float(heartbeat) <= time.time() + 1
        assert 0 < await client.ttl(f"{key}:publisher") <= 10
        ready = await api.direct.get("/ready")
        assert ready.json()["checks"]["redis"] == "ok"


@pytest.mark.redis
async def test_a_role_change_puts_every_session_of_that_user_in_the_set(start_api, redis_server):
    url, client, key = redis_server
    settings = {"admin_email": random_email(), "admin_password": ADMIN_PASSWORD}
    async with start_api(redis_url=url, revocation_redis_key=key, **settings) as api:
        user, first = await api.new_user()
        second = await api.login(user["email"])
        _, bystander = await api.new_user()
        assert (await api.set_role(user["id"], "ADMIN")).status_code == 200
        await wait_for_members(client, key, {sid(first), sid(second)})
        assert await client.zscore(key, sid(bystander)) is None


@pytest.mark.redis
async def test_replicas_publishing_together_write_each_session_once(start_api, redis_server):
    url, client, key = redis_server
    async with (
        start_api(redis_url=url, revocation_redis_key=key) as api,
        start_api(redis_url=url, revocation_redis_key=key) as replica,
    ):
        _, tokens = await api.new_user()
        await replica.client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        await wait_for_members(client, key, {sid(tokens)})
        score = await client.zscore(key, sid(tokens))
        await asyncio.sleep(1.5)  # both replicas have ticked again
        assert await client.zrange(key, 0, -1, withscores=True) == [(sid(tokens), score)]


async def test_with_redis_unreachable_the_service_serves_and_is_ready_but_degraded(
    start_api, caplog
):
    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="auth_service.revocation_publisher"):
        async with start_api(redis_url=unreachable, revocation_publish_seconds=0.05) as api:
            await asyncio.sleep(0.3)  # several failed ticks
            _, tokens = await api.new_user()
            logout = await api.client.post(
                "/auth/logout", json={"refresh_token": tokens["refresh_token"]}
            )
            assert logout.status_code == 204  # the revocation does not wait for Redis
            ready = await api.direct.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["checks"]["redis"] == "degraded"
            listed = await api.client.get("/internal/revocations")
            assert sid(tokens) in {e["sid"] for e in listed.json()["revoked_sessions"]}
    warnings = [r for r in caplog.records if r.name == "auth_service.revocation_publisher"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


async def test_without_redis_url_there_is_no_publisher_and_no_redis_check(api):
    assert api.app.state.revocation_publisher is None
    assert "redis" not in (await api.direct.get("/ready")).json()["checks"]


class TcpProxy:
    """Forwards a local port to Redis; `cut` drops it, `restore` brings it back."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def restore(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        finally:
            for stream in (writer, upstream_writer):
                stream.close()
            self.tasks.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


@pytest.mark.redis
async def test_a_redis_outage_degrades_then_recovers_and_loses_nothing(
    start_api, redis_server, caplog
):
    url, client, key = redis_server
    parsed = parse_url(url)
    proxy = TcpProxy(parsed.get("host", "127.0.0.1"), parsed.get("port", 6379))
    await proxy.restore()
    db = parsed.get("db", 0)
    proxied = f"redis://127.0.0.1:{proxy.port}/{db}"
    logger = "auth_service.revocation_publisher"
    with caplog.at_level(logging.INFO, logger=logger):
        async with start_api(
            redis_url=proxied, revocation_redis_key=key, revocation_publish_seconds=0.1
        ) as api:
            _, before = await api.new_user()
            _, during = await api.new_user()
            await api.client.post("/auth/logout", json={"refresh_token": before["refresh_token"]})
            await wait_for_members(client, key, {sid(before)})

            await proxy.cut()
            await asyncio.sleep(0.5)
            ready = await api.direct.get("/ready")
            assert (ready.status_code, ready.json()["checks"]["redis"]) == (200, "degraded")
            logout = await api.client.post(
                "/auth/logout", json={"refresh_token": during["refresh_token"]}
            )
            assert logout.status_code == 204
            await client.zrem(key, sid(before))  # as if Redis had restarted empty

            await proxy.restore()
            await wait_for_members(client, key, {sid(before), sid(during)})
            assert (await api.direct.get("/ready")).json()["checks"]["redis"] == "ok"
        await proxy.cut()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == logger]
    assert [level for level, _ in lines] == ["WARNING", "INFO"], lines
