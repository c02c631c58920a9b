"""Test helpers for code that uses events: the shared NATS server and unique names (a
private nats-server a test may stop is testsupport.nats.NatsServer)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.events.envelope import Event
from shop_common.events.outbox import record_event
from shop_common.events.streams import DeadLetterSpec, StreamSpec
from shop_common.testing import server_url_or_skip


def nats_test_url() -> str:
    """TEST_NATS_URL, or skip (a failure under CI)."""
    return server_url_or_skip("TEST_NATS_URL")


@dataclass(frozen=True)
class EventNames:
    """Stream, subjects and dead letters no other test uses (the server is shared)."""

    token: str

    @property
    def stream(self) -> str:
        return f"T_{self.token}"

    def subject(self, name: str) -> str:
        return f"t_{self.token}.{name}"

    def stream_spec(self, duplicate_window: float = 120.0) -> StreamSpec:
        return StreamSpec(
            name=self.stream,
            subjects=(f"t_{self.token}.>",),
            duplicate_window=duplicate_window,
            max_age=3600.0,  # leftovers of a crashed test go away by themselves
        )

    @property
    def dead_letters(self) -> DeadLetterSpec:
        return DeadLetterSpec(
            stream=f"T_DLQ_{self.token}", prefix=f"tdlq_{self.token}", max_age=3600.0
        )


def unique_event_names() -> EventNames:
    return EventNames(secrets.token_hex(5).upper())


async def commit_test_events(
    sessionmaker: async_sessionmaker[AsyncSession],
    names: EventNames,
    values: Sequence[str],
    *,
    source: str,
) -> list[Event]:
    """One `thing.changed` event per value, recorded in the outbox in order and committed."""
    async with sessionmaker() as session:
        events = [
            await record_event(
                session,
                source=source,
                subject=names.subject("thing.changed"),
                type="thing.changed",
                data={"value": value},
            )
            for value in values
        ]
        await session.commit()
    return events
