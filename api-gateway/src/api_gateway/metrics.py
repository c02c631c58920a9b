"""Gateway metrics: requests by route template (never the raw path), upstream health.

The request metrics are shop_common's, so dashboards read every process alike. Label
children are cached per (route, method, status): creating them takes a lock each time.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.metrics import Histogram as HistogramType

from shop_common.metrics import DURATION, IN_FLIGHT, REQUESTS, UNMATCHED_ROUTE

__all__ = ["IN_FLIGHT", "UNMATCHED_ROUTE", "RequestMetrics"]

UPSTREAM_ERRORS = Counter(
    "gateway_upstream_errors_total",
    "Upstream exchanges that failed, by upstream and kind (connect, timeout, protocol)",
    ["upstream", "kind"],
)
UPSTREAM_RESENT = Counter(
    "gateway_upstream_resent_total",
    "Writes sent to another instance after theirs died with them in flight, by upstream",
    ["upstream"],
)
UPSTREAM_DURATION = Histogram(
    "gateway_upstream_duration_seconds",
    "Time from sending a request upstream to its response head",
    ["upstream"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TOKENS = Counter(
    "gateway_token_verifications_total",
    "Access tokens checked, by result (cached, verified, rejected)",
    ["result"],
)
_TOKEN_RESULTS = {result: TOKENS.labels(result) for result in ("cached", "verified", "rejected")}
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Counter, HistogramType]] = {}
        self._upstream: dict[str, HistogramType] = {}

    def observe(self, route: str | None, method: str, status: int, seconds: float) -> None:
        if method not in KNOWN_METHODS:
            method = "OTHER"  # a client picks the method: keep the label set bounded
        key = (route or UNMATCHED_ROUTE, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                REQUESTS.labels(key[0], method, str(status)),
                DURATION.labels(key[0], method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def upstream_latency(self, upstream: str, seconds: float) -> None:
        histogram = self._upstream.get(upstream)
        if histogram is None:
            histogram = self._upstream[upstream] = UPSTREAM_DURATION.labels(upstream)
        histogram.observe(seconds)

    @staticmethod
    def upstream_error(upstream: str, kind: str) -> None:
        UPSTREAM_ERRORS.labels(upstream, kind).inc()


def token_checked(result: str) -> None:
    """result: "cached" (no signature check needed), "verified" or "rejected"."""
    _TOKEN_RESULTS[result].inc()
