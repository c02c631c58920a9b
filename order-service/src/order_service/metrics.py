"""order-service's own Prometheus metrics (beside the HTTP and events ones every service has)."""

from __future__ import annotations

from prometheus_client import Counter

# Every status change is also an event (events.py counts it when recording it): a rate per
# status is the shop's order flow; the sum over replicas is the system's.
ORDER_STATUS_CHANGES = Counter(
    "orders_status_changes_total",
    "Orders that entered a status (pending_payment when placed, aborted for a checkout given up)",
    ["status"],
)
CHECKOUTS = Counter(
    "orders_checkouts_total",
    "POST /orders outcomes: placed, replayed, refused (409/422), unavailable (503)",
    ["outcome"],
)
