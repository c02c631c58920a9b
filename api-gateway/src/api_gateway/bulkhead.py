"""Per-route concurrency limits (bulkheads) for routes that can be slow.

A product search with `q` may read far more than a page (a rare word, a short pattern),
and a flood of them would fill the product-service's database pool and slow every other
route of that service. Past the limit a search is answered 503 with Retry-After at once,
in this gateway, and never reaches the service. Other routes are not limited here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl

from api_gateway.exceptions import UpstreamUnavailable

# Two product-service instances' pools (2 x 16) are 32 connections: searches get half.
DEFAULT_SEARCH_CONCURRENCY = 16


class RouteBusy(UpstreamUnavailable):
    title = "Route busy"


class Bulkheads:
    """Counts the requests in flight per limited (method, route); refuses past the limit."""

    def __init__(self, *, search_limit: int) -> None:
        self._limit = search_limit
        self._in_flight = 0

    def limited(self, method: str, route: str, query: bytes) -> bool:
        """A search: GET /products with a non-empty `q`."""
        if method not in ("GET", "HEAD") or route != "/products" or b"q=" not in query:
            return False
        return any(k == "q" and v for k, v in parse_qsl(query.decode("latin-1")))

    @contextmanager
    def enter(self, method: str, route: str, query: bytes) -> Iterator[None]:
        if not self.limited(method, route, query):
            yield
            return
        if self._in_flight >= self._limit:
            raise RouteBusy("Too many searches in progress; try again.")
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        return self._in_flight
