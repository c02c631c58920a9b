from __future__ import annotations

import pytest

from api_gateway.ratelimit import Rate, parse_optional_rate, parse_rate


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        pytest.param("10 per 15 minutes", Rate(10, 900), id="count-and-plural"),
        pytest.param("30 per minute", Rate(30, 60), id="single-unit"),
        pytest.param("5 per hour", Rate(5, 3600), id="hour"),
        pytest.param("1200 per 1 day", Rate(1200, 86400), id="explicit-one"),
        pytest.param("3 per 2 seconds", Rate(3, 2), id="seconds"),
        pytest.param("  7 PER Minute ", Rate(7, 60), id="case-and-spaces"),
    ],
)
def test_parses_the_contract_notation(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("10", id="no-period"),
        pytest.param("10 per fortnight", id="unknown-unit"),
        pytest.param("0 per minute", id="zero-limit"),
        pytest.param("5 per 0 minutes", id="zero-period"),
        pytest.param("-1 per minute", id="negative"),
        pytest.param("10/minute", id="other-notation"),
        pytest.param("off", id="off-where-not-allowed"),
    ],
)
def test_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="notation|at least 1"):
        parse_rate(text)


def test_off_disables_an_optional_limit() -> None:
    assert parse_optional_rate("off") is None
    assert parse_optional_rate(" OFF ") is None
    assert parse_optional_rate("2 per second") == Rate(2, 1)
