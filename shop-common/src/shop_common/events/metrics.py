"""Prometheus metrics of the event machinery, on each process's /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# Every worker's relay measures the same outbox: with several workers (shop_common.workers)
# the largest reading of a live worker is the figure.
OUTBOX_LAG_ROWS = Gauge(
    "events_outbox_lag_rows",
    "Outbox rows committed but not yet published",
    ["source"],
    multiprocess_mode="livemax",
)
OUTBOX_LAG_SECONDS = Gauge(
    "events_outbox_lag_seconds",
    "Age of the oldest unpublished outbox row (0 when none)",
    ["source"],
    multiprocess_mode="livemax",
)
PUBLISHED = Counter("events_published_total", "Events the relay published", ["source"])
PUBLISH_FAILURES = Counter(
    "events_publish_failures_total", "Relay passes stopped by a NATS failure", ["source"]
)
CONSUMED = Counter(
    "events_consumed_total",
    "Deliveries handled by a consumer, by outcome (applied, duplicate, retried, dead_lettered)",
    ["consumer", "outcome"],
)
REDELIVERIES = Counter(
    "events_redeliveries_total",
    "Deliveries of an event a consumer had been given before",
    ["consumer"],
)
DEAD_LETTERS = Counter(
    "events_dead_letters_total",
    "Events a consumer gave up on (sent to the dead letters)",
    ["consumer"],
)
