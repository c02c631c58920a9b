"""The AsyncAPI 3 document of the events the services publish, served at
/api-docs/asyncapi.json and linked from the Swagger page.

The gateway imports no service, so the events are described here; tests/docs checks
them against each service's own list of event types (order_service.events, product
service's), so a new event cannot go undocumented.
"""

from __future__ import annotations

from typing import Any

import orjson

ASYNCAPI_PATH = "/api-docs/asyncapi.json"

_ENVELOPE_FIELDS: dict[str, Any] = {
    "id": {
        "type": "string",
        "format": "uuid",
        "description": "Unique per event; also the `Nats-Msg-Id` header. Consumers drop repeats.",
    },
    "type": {"type": "string", "description": "The event type, such as `order.placed`."},
    "source": {"type": "string", "description": "The publishing service."},
    "subject": {"type": "string", "description": "The NATS subject it was published on."},
    "occurred_at": {"type": "string", "format": "date-time"},
    "traceparent": {
        "type": ["string", "null"],
        "description": "W3C trace context of the change (also a message header).",
    },
}
_HEADERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "Nats-Msg-Id": {"type": "string", "description": "The event id (JetStream dedupe)."},
        "Shop-Event-Type": {"type": "string"},
        "traceparent": {"type": "string"},
    },
}
_PRICE = {"type": "string", "description": "An exact decimal, as text.", "examples": ["39.98"]}
_LINE = {
    "type": "object",
    "required": ["product_id", "quantity"],
    "properties": {
        "product_id": {"type": "string", "format": "uuid"},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
}
_ORDER_DATA: dict[str, Any] = {
    "type": "object",
    "required": ["order_id", "number", "user_id", "status", "version"],
    "properties": {
        "order_id": {"type": "string", "format": "uuid"},
        "number": {"type": "integer", "minimum": 1},
        "user_id": {"type": "string", "format": "uuid"},
        "status": {
            "type": "string",
            "enum": ["pending_payment", "paid", "shipped", "cancelled", "expired", "aborted"],
        },
        "version": {"type": "integer", "minimum": 1},
        "currency": {"type": "string"},
        "total": _PRICE,
        "items": {"type": "array", "items": _LINE},
    },
}
_PRODUCT_DATA: dict[str, Any] = {
    "type": "object",
    "description": "The product as `GET /products/{id}` shows it.",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "name": {"type": "string"},
        "price": {"type": ["number", "string"]},
        "currency": {"type": "string"},
        "stock": {"type": "integer"},
        "version": {"type": "integer"},
    },
}
_STOCK_DATA: dict[str, Any] = {
    "type": "object",
    "required": ["order_id", "items"],
    "properties": {
        "order_id": {"type": "string", "format": "uuid"},
        "items": {"type": "array", "items": _LINE},
    },
}

# (type, subject, publisher, data schema, what it means)
EVENTS: tuple[tuple[str, str, str, dict[str, Any], str], ...] = (
    (
        "order.placed",
        "orders.placed",
        "order-service",
        _ORDER_DATA,
        "An order was placed; its stock is reserved and it awaits payment.",
    ),
    ("order.paid", "orders.paid", "order-service", _ORDER_DATA, "An ADMIN recorded the payment."),
    ("order.shipped", "orders.shipped", "order-service", _ORDER_DATA, "The order was shipped."),
    (
        "order.cancelled",
        "orders.cancelled",
        "order-service",
        _ORDER_DATA,
        "The order was cancelled; product-service returns its stock.",
    ),
    (
        "order.expired",
        "orders.expired",
        "order-service",
        _ORDER_DATA,
        "The order was not paid in time; product-service returns its stock.",
    ),
    (
        "order.aborted",
        "orders.aborted",
        "order-service",
        _ORDER_DATA,
        "A checkout was given up before it was answered (never a visible order); "
        "product-service releases whatever it had reserved for it.",
    ),
    ("product.created", "products.created", "product-service", _PRODUCT_DATA, "A new product."),
    ("product.updated", "products.updated", "product-service", _PRODUCT_DATA, "A product changed."),
    (
        "product.deleted",
        "products.deleted",
        "product-service",
        {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        "A product was deleted.",
    ),
    (
        "product.stock_reserved",
        "products.stock_reserved",
        "product-service",
        _STOCK_DATA,
        "Stock was reserved for an order.",
    ),
    (
        "product.stock_released",
        "products.stock_released",
        "product-service",
        _STOCK_DATA,
        "An order's reserved stock went back to the catalog (once).",
    ),
)


def _name(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.replace("_", ".").split("."))


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type, subject, publisher, data, summary in EVENTS:
        name = _name(event_type)
        messages[name] = {
            "name": event_type,
            "title": event_type,
            "summary": summary,
            "contentType": "application/json",
            "headers": _HEADERS,
            "payload": {
                "type": "object",
                "required": ["id", "type", "source", "subject", "occurred_at", "data"],
                "properties": {
                    **_ENVELOPE_FIELDS,
                    "type": {"type": "string", "const": event_type},
                    "source": {"type": "string", "const": publisher},
                    "data": data,
                },
            },
        }
        channels[name] = {
            "address": subject,
            "description": f"Stream {'ORDERS' if subject.startswith('orders.') else 'PRODUCTS'}.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": f"{publisher} publishes {event_type}.",
            "x-publisher": publisher,
            "messages": [{"$ref": f"#/channels/{name}/messages/{name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Shop events",
            "version": "1.0.0",
            "description": (
                "Events the services publish on NATS JetStream through a transactional "
                "outbox: at least once, each with a unique id (`Nats-Msg-Id`), so a "
                "consumer that records the ids it applied (an inbox) applies each once. "
                "Streams: `ORDERS` (subjects `orders.>`) and `PRODUCTS` (`products.>`); "
                "events a consumer cannot apply go to `DEAD_LETTERS`."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "127.0.0.1:5004",
                "protocol": "nats",
                "description": "make run's own server; production sets NATS_URL.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


DOCUMENT = orjson.dumps(asyncapi_document())
