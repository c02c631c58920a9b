"""Per-instance health: outstanding requests, readiness ejection and a circuit breaker.

An instance is skipped while its breaker is open or its /ready probe failed
(docs/decisions/gateway-balancing.md). A refused connection opens the breaker at once
(the process is gone), and so does a stall (a request got no answer within
STALL_SECONDS while the instance answered nothing else: frozen, not slow); timeouts and
broken exchanges open it after FAILURE_THRESHOLD in a row. A timeout on an instance that
answered other requests meanwhile is one slow route, not a failing instance, and does
not count: a slow search must not cost every other route of the service. Once the
cool-down has passed the instance is tried again ("half-open"): one success closes the
breaker, one failure opens it again for twice as long (capped).
"""

from __future__ import annotations

import time

# An idempotent request with no answer this long, from an instance that answered nothing
# else meanwhile, is given up on that instance and sent to another (upstream.py).
STALL_SECONDS = 1.0

FAILURE_THRESHOLD = 3
COOL_DOWN_SECONDS = 1.0
MAX_COOL_DOWN_SECONDS = 10.0


class InstanceHealth:
    __slots__ = ("_failures", "_open_until", "_opened", "last_answer", "not_ready", "outstanding")

    def __init__(self) -> None:
        self.outstanding = 0  # requests sent and not yet released
        self.not_ready = False  # the last /ready probe failed
        self.last_answer = 0.0  # time.monotonic() of the last response head
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

    def answered_since(self, moment: float) -> bool:
        """The instance answered some request after `moment`: it is alive."""
        return self.last_answer > moment

    def succeeded(self) -> None:
        self.last_answer = time.monotonic()
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
