"""Per-instance health: outstanding requests, readiness ejection and a circuit breaker.

An instance is skipped while its breaker is open or its /ready probe failed
(docs/decisions/gateway-balancing.md). A refused connection opens the breaker at once
(the process is gone); timeouts and broken exchanges open it after FAILURE_THRESHOLD in
a row. Once the cool-down has passed the instance is tried again ("half-open"): one
success closes the breaker, one failure opens it again for twice as long (capped).
"""

from __future__ import annotations

import time

FAILURE_THRESHOLD = 3
COOL_DOWN_SECONDS = 1.0
MAX_COOL_DOWN_SECONDS = 10.0


class InstanceHealth:
    __slots__ = ("_failures", "_open_until", "_opened", "not_ready", "outstanding")

    def __init__(self) -> None:
        self.outstanding = 0  # requests sent and not yet released
        self.not_ready = False  # the last /ready probe failed
        self._failures = 0
        self._opened = 0  # consecutive openings: each doubles the cool-down
        self._open_until = 0.0

    @property
    def open(self) -> bool:
        """The breaker is open: requests fail fast without trying this instance."""
        return time.monotonic() < self._open_until

    @property
    def usable(self) -> bool:
        return not self.not_ready and not self.open

    def succeeded(self) -> None:
        self._failures = 0
        self._opened = 0
        self._open_until = 0.0

    def failed(self, *, refused: bool = False) -> None:
        self._failures += 1
        if refused or self._failures >= FAILURE_THRESHOLD or self._opened:
            cool_down = min(COOL_DOWN_SECONDS * 2**self._opened, MAX_COOL_DOWN_SECONDS)
            self._opened += 1
            self._open_until = time.monotonic() + cool_down

    def probed(self, state: str) -> None:
        """The readiness poller's verdict: "ok" brings the instance back at once (a
        refused probe already opened the breaker, as any refused connection does)."""
        self.not_ready = state != "ok"
        if state == "ok":
            self.succeeded()
