"""The contract's rate-limit notation, `N per [K] second|minute|hour|day`, parsed once.

Limiting itself is `limiter.py`; parsing at startup means a typo in a
setting stops the gateway with a clear message instead of being ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_NOTATION = re.compile(
    r"\s*(?P<limit>[0-9]+)\s+per\s+(?:(?P<count>[0-9]+)\s+)?"
    r"(?P<unit>second|minute|hour|day)s?\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `limit` events per `period_seconds`."""

    limit: int
    period_seconds: int

    def __str__(self) -> str:
        return f"{self.limit} per {self.period_seconds} seconds"


def parse_rate(text: str) -> Rate:
    """`"10 per 15 minutes"` -> Rate(10, 900); ValueError names the expected notation."""
    match = _NOTATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not in the `N per [K] second|minute|hour|day` notation")
    limit = int(match["limit"])
    count = int(match["count"] or 1)
    if limit < 1 or count < 1:
        raise ValueError(f"{text!r}: the numbers must be at least 1")
    return Rate(limit=limit, period_seconds=count * _UNIT_SECONDS[match["unit"].lower()])


def parse_optional_rate(text: str) -> Rate | None:
    """Like parse_rate, and `off` disables the limit (None)."""
    if text.strip().lower() == "off":
        return None
    return parse_rate(text)
