"""Writes the gateway sends again: applied at most once, answered as the first time.

An instance that dies (SIGKILL, a lost node) with a write in flight leaves the gateway not
knowing whether that write committed. For the routes its policy marks, the gateway sends
the very same request (same credential, so the same `jti`) to another instance with
`X-Gateway-Retry: 1` instead of answering 502. Every outbox row records the `jti` of the
request that wrote it (`request_key`, unique with the event's type), so the instance that
gets the retry can tell: when the first attempt committed, its event is there and the
answer is rebuilt from it; when not, the write is applied now, and the unique index makes
sure the two attempts can never both commit. docs/decisions/retried-writes.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp

if TYPE_CHECKING:  # the gateway imports this module and has no database
    from sqlalchemy.ext.asyncio import AsyncEngine

RETRY_HEADER = b"x-gateway-retry"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# A service's answer to a retried write whose first attempt committed: an ASGI response
# rebuilt from that attempt's events (type, data), or None to apply the write now.
Replay = Callable[[Sequence[tuple[str, Any]]], ASGIApp | None]


def is_retry(method: str, headers: Sequence[tuple[bytes, bytes]]) -> bool:
    return method in WRITE_METHODS and any(name == RETRY_HEADER for name, _ in headers)


async def applied_events(engine: AsyncEngine, table: str, key: str) -> Sequence[tuple[str, Any]]:
    """The (type, data) of the events the request with this credential id committed."""
    from sqlalchemy import select

    from shop_common.events.outbox import outbox_table_named

    outbox = outbox_table_named(table)
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.type, outbox.c.data)
            .where(outbox.c.request_key == key)
            .order_by(outbox.c.position)
        )
        return [(row.type, row.data) for row in rows]


ReplayLookup = Callable[[str], Awaitable[ASGIApp | None]]


def replay_from_outbox(
    engine: Callable[[], AsyncEngine], table: str, replay: Replay
) -> ReplayLookup:
    """The GatewayGuard's hook: find the first attempt's events, let the service answer."""

    async def lookup(key: str) -> ASGIApp | None:
        events = await applied_events(engine(), table, key)
        return replay(events) if events else None

    return lookup
