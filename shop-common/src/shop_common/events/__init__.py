"""Events on NATS JetStream: envelope, transactional outbox and relay, consumers with an
inbox, dead letters. Infrastructure only: each service owns its event types and data.
"""

from shop_common.events.consumer import ConsumerSpec, EventConsumer, Handler, PermanentFailure
from shop_common.events.envelope import Event, MalformedEvent
from shop_common.events.outbox import record_event
from shop_common.events.relay import OutboxRelay
from shop_common.events.runtime import EventRuntime, connect_nats
from shop_common.events.streams import DeadLetterSpec, StreamSpec, ensure_streams
from shop_common.events.tables import DEFAULT_OUTBOX_TABLE, inbox_table, outbox_table

__all__ = [
    "DEFAULT_OUTBOX_TABLE",
    "ConsumerSpec",
    "DeadLetterSpec",
    "Event",
    "EventConsumer",
    "EventRuntime",
    "Handler",
    "MalformedEvent",
    "OutboxRelay",
    "PermanentFailure",
    "StreamSpec",
    "connect_nats",
    "ensure_streams",
    "inbox_table",
    "outbox_table",
    "record_event",
]
