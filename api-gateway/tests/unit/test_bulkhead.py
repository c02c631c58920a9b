"""Bulkheads: which requests are limited, and refusal past the limit."""

from __future__ import annotations

import pytest

from api_gateway.bulkhead import Bulkheads, RouteBusy


@pytest.mark.parametrize(
    ("method", "route", "query", "limited"),
    [
        pytest.param("GET", "/products", b"q=shoe", True, id="search"),
        pytest.param("GET", "/products", b"limit=5&q=a%20b", True, id="search-among-others"),
        pytest.param("GET", "/products", b"q=", False, id="empty-q"),
        pytest.param("GET", "/products", b"limit=5", False, id="list"),
        pytest.param("GET", "/products/{id}", b"q=x", False, id="by-id"),
        pytest.param("POST", "/products", b"q=x", False, id="write"),
    ],
)
def test_only_searches_are_limited(method: str, route: str, query: bytes, limited: bool) -> None:
    assert Bulkheads(search_limit=1).limited(method, route, query) is limited


def test_a_search_past_the_limit_is_refused_and_its_slot_comes_back() -> None:
    bulkheads = Bulkheads(search_limit=2)
    with bulkheads.enter("GET", "/products", b"q=a"), bulkheads.enter("GET", "/products", b"q=b"):
        with pytest.raises(RouteBusy) as refused:
            with bulkheads.enter("GET", "/products", b"q=c"):
                pass
        with bulkheads.enter("GET", "/products", b"limit=5"):
            assert bulkheads.in_flight == 2  # a plain list is not counted
    assert refused.value.status == 503
    assert refused.value.headers == {"Retry-After": "1"}
    assert bulkheads.in_flight == 0
