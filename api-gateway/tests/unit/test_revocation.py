from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import orjson
import pytest

from api_gateway.revocation import RevocationFeed, RevokedSessions

pytestmark = pytest.mark.anyio


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuthService:
    """A fake /internal/revocations: answers queued documents, records each `since`."""

    def __init__(self) -> None:
        self.answers: list[bytes | Exception] = []
        self.sinces: list[float] = []

    async def __call__(self, since: str) -> bytes:
        self.sinces.append(datetime.fromisoformat(since).timestamp())
        answer = self.answers.pop(0) if self.answers else self.document([])
        if isinstance(answer, Exception):
            raise answer
        return answer

    @staticmethod
    def document(entries: list[tuple[str, float]], as_of: float | None = None) -> bytes:
        return orjson.dumps(
            {
                "revoked_sessions": [{"sid": s, "revoked_at": rfc3339(at)} for s, at in entries],
                "as_of": rfc3339(as_of or time.time()),
            }
        )


def feed_for(auth: AuthService, retention: float = 1020.0) -> RevocationFeed:
    return RevocationFeed(
        RevokedSessions(retention),
        poll_auth_service=auth,
        redis=None,
        redis_key="unused",
        interval=1.0,
    )


async def test_revoked_sids_are_learnt_from_the_poll() -> None:
    auth = AuthService()
    auth.answers.append(auth.document([("s-1", time.time() - 5), ("s-2", time.time())]))
    feed = feed_for(auth)
    await feed.tick()
    assert "s-1" in feed.revoked and "s-2" in feed.revoked
    assert "s-3" not in feed.revoked
    assert feed.source == "auth-service"


async def test_the_first_poll_covers_the_retention_and_later_ones_overlap_a_minute() -> None:
    auth = AuthService()
    as_of = time.time()
    auth.answers.append(auth.document([], as_of=as_of))
    feed = feed_for(auth, retention=1020.0)
    await feed.tick()
    await feed.tick()
    assert time.time() - auth.sinces[0] == pytest.approx(1020.0, abs=5)
    assert auth.sinces[1] == pytest.approx(as_of - 60.0, abs=0.01)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(ConnectionError("refused"), id="down"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"revoked_sessions": [{"sid": 1}]}', id="wrong-shape"),
        pytest.param(b"[]", id="a-list"),
    ],
)
async def test_a_failing_poll_keeps_what_is_known_and_warns_once(
    answer: bytes | Exception, caplog: pytest.LogCaptureFixture
) -> None:
    auth = AuthService()
    auth.answers += [auth.document([("known", time.time())]), answer, answer, answer]
    feed = feed_for(auth)
    for _ in range(4):
        await feed.tick()  # never raises
    await feed.tick()  # answers again
    assert "known" in feed.revoked
    levels = [r.levelno for r in caplog.records if r.name == "api_gateway.revocation"]
    assert levels.count(logging.WARNING) == 1


def test_sids_are_forgotten_once_no_token_of_theirs_can_live() -> None:
    revoked = RevokedSessions(retention=100.0)
    now = time.time()
    assert revoked.add([("old", now - 150), ("recent", now - 50), ("recent", now - 60)]) == 2
    revoked.prune(now)
    assert "old" not in revoked
    assert "recent" in revoked
    assert len(revoked) == 1


async def test_implausible_sids_are_ignored() -> None:
    auth = AuthService()
    auth.answers.append(auth.document([("x" * 500, time.time()), ("fine", time.time())]))
    feed = feed_for(auth)
    await feed.tick()
    assert len(feed.revoked) == 1
