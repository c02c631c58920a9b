"""Recording an event: a row in the caller's transaction, and a wake-up for the relay.

The row commits or rolls back with the change it describes, so an event is published if
and only if its change is durable. After a commit that recorded events, every relay in
this process is woken at once; relays in other processes find the rows on their next poll.
"""

from __future__ import annotations

import sys
import uuid
import weakref
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Insert, MetaData, Table, bindparam, event, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from shop_common.events.envelope import Event, dump_json
from shop_common.events.tables import DEFAULT_OUTBOX_TABLE, outbox_table
from shop_common.request_context import request_key_var

_PENDING_KEY = "shop_events_pending"
# Table objects for inserting into a service's outbox (the same schema under its name).
_TABLES: dict[str, Table] = {}
_INSERTS: dict[str, Insert] = {}


class Wakeable(Protocol):
    """Something to wake after a commit that recorded events (a relay)."""

    def wake(self) -> None: ...


_WAKERS: weakref.WeakSet[Wakeable] = weakref.WeakSet()


def register_waker(waker: Wakeable) -> None:
    _WAKERS.add(waker)


def outbox_table_named(name: str) -> Table:
    """The outbox table of that name (one Table object per name, for statements)."""
    if name not in _TABLES:
        _TABLES[name] = outbox_table(MetaData(), name)
    return _TABLES[name]


def _insert_into(name: str) -> Insert:
    """The INSERT into that outbox, built once: a statement built per event with
    `.values(...)` cost more CPU than the rest of a product write."""
    statement = _INSERTS.get(name)
    if statement is None:
        statement = _INSERTS[name] = insert(outbox_table_named(name))
    return statement


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, if this process traces at all."""
    if "opentelemetry.trace" not in sys.modules:
        return None  # tracing is off: opentelemetry is never imported (memory, start time)
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


async def record_event(
    session: AsyncSession,
    *,
    source: str,
    subject: str,
    type: str,
    data: Mapping[str, Any],
    event_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
    table: str = DEFAULT_OUTBOX_TABLE,
) -> Event:
    """Add the event to the outbox in `session`'s transaction; it is published after commit.

    Nothing is sent now: if the transaction rolls back, the event never existed.
    """
    fields: dict[str, Any] = {}
    if event_id is not None:
        fields["id"] = event_id
    if occurred_at is not None:
        fields["occurred_at"] = occurred_at
    recorded = Event(
        type=type,
        source=source,
        subject=subject,
        data=data,
        traceparent=current_traceparent(),
        **fields,
    )
    await session.execute(_insert_into(table), _row_of(recorded))
    session.info[_PENDING_KEY] = True
    return recorded


# What recording an event sets (position and published_at are the database's and the relay's).
_ROW_COLUMNS = (
    "id",
    "type",
    "source",
    "subject",
    "occurred_at",
    "data",
    "traceparent",
    "request_key",
)


def _row_of(recorded: Event) -> dict[str, Any]:
    return {
        "id": str(recorded.id),
        "type": recorded.type,
        "source": recorded.source,
        "subject": recorded.subject,
        "occurred_at": recorded.occurred_at,
        "data": dump_json(recorded.data).decode(),
        "traceparent": recorded.traceparent,
        "request_key": request_key_var.get(),
    }


# The outbox row's values in a statement that makes the change and records its event at
# once (with_event): bound under these names, beside the change's own parameters.
_EVENT_PARAMETER = "event_"


def with_event(change: Insert, table: str = DEFAULT_OUTBOX_TABLE) -> Insert:
    """One statement (PostgreSQL): `change` (an INSERT with bound values) and its event's
    outbox row, both or neither. Build it once; run it with `event_parameters` merged
    into the change's parameters, then call wake_relays().

    On its own (autocommit) it is one round trip where a transaction takes four (BEGIN,
    the change, the event, COMMIT) — and it commits as it runs, so run it only when it
    cannot outlive the request (shop_common.database.may_commit_alone).
    """
    outbox = outbox_table_named(table)
    done = change.returning(literal_column("1")).cte("change")
    names = list(_ROW_COLUMNS)
    values = select(
        *(bindparam(_EVENT_PARAMETER + name, type_=outbox.c[name].type) for name in names)
    ).select_from(done)
    return insert(outbox).from_select(names, values)


def event_parameters(
    *, source: str, subject: str, type: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The event's values for a `with_event` statement (as record_event would store them)."""
    recorded = Event(
        type=type, source=source, subject=subject, data=data, traceparent=current_traceparent()
    )
    return {_EVENT_PARAMETER + name: value for name, value in _row_of(recorded).items()}


def wake_relays() -> None:
    """After a commit outside a session (with_event): every relay in this process looks
    at the outbox now, as a session's commit that recorded events makes them."""
    for waker in list(_WAKERS):
        waker.wake()


@event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    if session.info.pop(_PENDING_KEY, False):
        wake_relays()


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
