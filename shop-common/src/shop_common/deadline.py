"""The request's deadline: past it, nothing the request wrote is committed.

The gateway (or a service calling another) puts in each credential the moment, a margin
before it stops waiting, after which the answer would come too late (the `dl` claim,
shop_common.credential). GatewayGuard refuses a request already past it and otherwise
sets it here for the request; a commit after it raises RequestDeadlinePassed instead of
committing (shop_common.database's before_commit hook), so a write the gateway answered
504 is never applied when a frozen or stalled instance resumes
(docs/decisions/request-deadline.md). No SQLAlchemy here: the gateway imports the guard.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from shop_common.problems import Problem

# Epoch seconds; None outside a request, or for a request minted without one.
request_deadline: ContextVar[float | None] = ContextVar("request_deadline", default=None)


class RequestDeadlinePassed(Problem):
    """The request's deadline passed before its work was committed: rolled back."""

    status = 503
    title = "Deadline passed"
    headers = {"Retry-After": "1"}


def time_left() -> float | None:
    """Seconds until the current request's deadline (negative once past); None: none."""
    deadline = request_deadline.get()
    return None if deadline is None else deadline - time.time()


@contextmanager
def no_deadline() -> Iterator[None]:
    """Run compensating work (undoing what a request began) whatever the deadline says."""
    token = request_deadline.set(None)
    try:
        yield
    finally:
        request_deadline.reset(token)
