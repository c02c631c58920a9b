"""The revocation publisher's bookkeeping, against the real database and a fake Redis."""

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import update

from auth_service.models import LoginSession
from auth_service.revocation_publisher import OVERLAP, RESYNC_SECONDS, RevocationPublisher

pytestmark = pytest.mark.anyio
RETENTION = timedelta(minutes=17)


class FakeSortedSet:
    """What the gateways would read from Redis; every publish raises `failure` when set."""

    def __init__(self) -> None:
        self.members: dict[str, float] = {}
        self.published: list[list[tuple[str, float]]] = []
        self.heartbeat: float | None = None
        self.failure: Exception | None = None

    async def publish(
        self, entries: Sequence[tuple[str, float]], *, prune_before: float, as_of: float
    ) -> None:
        if self.failure is not None:
            raise self.failure
        self.published.append(list(entries))
        self.members.update(entries)
        self.members = {m: s for m, s in self.members.items() if s >= prune_before}
        self.heartbeat = as_of

    async def aclose(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        return self.offset


def sid(tokens: dict[str, Any]) -> str:
    value: str = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]
    return value


def publisher_for(api: Any, sink: FakeSortedSet, clock: Clock | None = None) -> RevocationPublisher:
    clock = clock or Clock()
    return RevocationPublisher(
        api.app.state.sessionmaker,
        sink,
        retention=RETENTION,
        interval=0.01,
        clock=clock.now,
        monotonic=clock.monotonic,
    )


async def logout(api: Any, tokens: dict[str, Any]) -> None:
    response = await api.client.post(
        "/auth/logout", json={"refresh_token": tokens["refresh_token"]}
    )
    assert response.status_code == 204


async def set_revoked_at(api: Any, session_id: str, at: datetime) -> None:
    async with api.app.state.sessionmaker() as session:
        await session.execute(
            update(LoginSession)
            .where(LoginSession.id == uuid.UUID(session_id))
            .values(revoked_at=at)
        )
        await session.commit()


async def test_a_revoked_session_is_published_with_its_revocation_time(api):
    _, ended = await api.new_user()
    _, alive = await api.new_user()
    before = datetime.now(UTC).timestamp()
    await logout(api, ended)
    sink = FakeSortedSet()
    publisher = publisher_for(api, sink)
    await publisher.tick()
    assert set(sink.members) == {sid(ended)}
    assert before - 1 <= sink.members[sid(ended)] <= datetime.now(UTC).timestamp()
    assert sid(alive) not in sink.members
    assert sink.heartbeat is not None
    assert publisher.state == "ok"


async def test_a_session_is_sent_once_and_later_ones_are_sent_on_the_next_tick(api):
    _, first = await api.new_user()
    _, second = await api.new_user()
    await logout(api, first)
    sink = FakeSortedSet()
    publisher = publisher_for(api, sink)
    await publisher.tick()
    await publisher.tick()
    await logout(api, second)
    await publisher.tick()
    assert sink.published == [
        [(sid(first), sink.members[sid(first)])],
        [],
        [(sid(second), sink.members[sid(second)])],
    ]


async def test_a_revocation_committed_late_with_an_earlier_time_is_still_published(api):
    _, early = await api.new_user()
    _, late = await api.new_user()
    await logout(api, early)
    sink = FakeSortedSet()
    publisher = publisher_for(api, sink)
    await publisher.tick()
    # Stamped before the newest pushed revocation, but visible only now (a slow commit,
    # or another replica whose clock is behind).
    await logout(api, late)
    stamped = datetime.fromtimestamp(sink.members[sid(early)], UTC) - OVERLAP / 2
    await set_revoked_at(api, sid(late), stamped)
    await publisher.tick()
    assert sink.members[sid(late)] == pytest.approx(stamped.timestamp())


async def test_revocations_older_than_the_retention_are_neither_sent_nor_kept(api):
    _, old = await api.new_user()
    _, recent = await api.new_user()
    await logout(api, old)
    await logout(api, recent)
    await set_revoked_at(api, sid(old), datetime.now(UTC) - RETENTION - timedelta(seconds=5))
    sink = FakeSortedSet()
    sink.members["stale-sid"] = (datetime.now(UTC) - RETENTION * 2).timestamp()
    await publisher_for(api, sink).tick()
    assert set(sink.members) == {sid(recent)}


async def test_a_redis_outage_is_logged_once_and_everything_is_copied_after_it(api, caplog):
    _, before = await api.new_user()
    _, during = await api.new_user()
    await logout(api, before)
    sink = FakeSortedSet()
    publisher = publisher_for(api, sink)
    await publisher.tick_safely()
    sink.failure = RedisConnectionError("Connection refused")
    with caplog.at_level(logging.INFO, logger="auth_service.revocation_publisher"):
        for _ in range(3):
            await publisher.tick_safely()
        degraded = publisher.state
        await logout(api, during)
        # Redis came back empty (restarted without persistence).
        sink.failure, sink.members = None, {}
        await publisher.tick_safely()
    assert (degraded, publisher.state) == ("degraded", "ok")
    assert set(sink.members) == {sid(before), sid(during)}
    lines = [r for r in caplog.records if r.name == "auth_service.revocation_publisher"]
    assert [r.levelname for r in lines] == ["WARNING", "INFO"]
    assert "redis" in lines[0].getMessage()


async def test_a_redis_emptied_without_an_error_is_refilled_by_the_periodic_resync(api):
    _, tokens = await api.new_user()
    await logout(api, tokens)
    sink, clock = FakeSortedSet(), Clock()
    publisher = publisher_for(api, sink, clock)
    await publisher.tick()
    sink.members = {}
    await publisher.tick()
    assert sink.members == {}
    clock.offset = RESYNC_SECONDS
    await publisher.tick()
    assert set(sink.members) == {sid(tokens)}


async def test_a_database_outage_never_stops_the_publisher(start_api, caplog):
    async with start_api(auth_database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none") as api:
        sink = FakeSortedSet()
        publisher = publisher_for(api, sink)
        with caplog.at_level(logging.WARNING, logger="auth_service.revocation_publisher"):
            await publisher.tick_safely()
            await publisher.tick_safely()
    assert publisher.state == "degraded"
    lines = [r for r in caplog.records if r.name == "auth_service.revocation_publisher"]
    assert len(lines) == 1 and "database" in lines[0].getMessage()


async def test_an_unexpected_error_is_logged_and_retried(api, caplog):
    sink = FakeSortedSet()
    sink.failure = RuntimeError("bug")
    publisher = publisher_for(api, sink)
    with caplog.at_level(logging.WARNING, logger="auth_service.revocation_publisher"):
        await publisher.tick_safely()
        await publisher.tick_safely()
    assert publisher.state == "degraded"
    assert len([r for r in caplog.records if r.name == "auth_service.revocation_publisher"]) == 1
