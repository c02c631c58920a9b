"""The event envelope: what every event carries on the wire, whoever publishes it.

The body is the whole envelope as JSON; the id travels also as `Nats-Msg-Id` (JetStream
drops a repeat within the stream's duplicate window) and the trace as `traceparent`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

MSG_ID_HEADER = "Nats-Msg-Id"
TRACEPARENT_HEADER = "traceparent"
TYPE_HEADER = "Shop-Event-Type"


class MalformedEvent(ValueError):
    """A message whose body is not an event envelope: it goes to the dead letters."""


def _default(value: Any) -> Any:
    # Prices are exact decimals: they travel as strings, as in the HTTP API.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dump_json(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_UTC_Z)


@dataclass(frozen=True)
class Event:
    """One fact that happened in a service, published once and applied once per consumer."""

    type: str
    source: str
    subject: str
    data: Mapping[str, Any]
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    traceparent: str | None = None

    def to_json(self) -> bytes:
        return dump_json(
            {
                "id": str(self.id),
                "type": self.type,
                "source": self.source,
                "subject": self.subject,
                "occurred_at": self.occurred_at.astimezone(UTC),
                "data": self.data,
                "traceparent": self.traceparent,
            }
        )

    def headers(self) -> dict[str, str]:
        headers = {MSG_ID_HEADER: str(self.id), TYPE_HEADER: self.type}
        if self.traceparent:
            headers[TRACEPARENT_HEADER] = self.traceparent
        return headers

    @classmethod
    def from_json(cls, body: bytes, *, traceparent: str | None = None) -> Event:
        """The envelope of a message; `traceparent` (the message header) wins over the body's."""
        try:
            raw = orjson.loads(body)
            occurred_at = datetime.fromisoformat(raw["occurred_at"].replace("Z", "+00:00"))
            data = raw["data"]
            if not isinstance(data, dict) or occurred_at.tzinfo is None:
                raise ValueError("data must be an object and occurred_at carry an offset")
            return cls(
                id=uuid.UUID(raw["id"]),
                type=str(raw["type"]),
                source=str(raw["source"]),
                subject=str(raw["subject"]),
                occurred_at=occurred_at,
                data=data,
                traceparent=traceparent or raw.get("traceparent"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedEvent(f"not an event envelope: {exc}") from exc
