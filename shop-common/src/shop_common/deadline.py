"""The request's deadline: past it, nothing the request wrote is committed.

The gateway (or a service calling another) puts in each credential the moment, a margin
before it stops waiting, after which the answer would come too late (the `dl` claim,
shop_common.credential). GatewayGuard refuses a request already past it and otherwise
sets it here for the request; a commit after it raises RequestDeadlinePassed instead of
committing (a SQLAlchemy before_commit hook), so a write the gateway answered 504 is never
applied when a frozen or stalled instance resumes (docs/decisions/request-deadline.md).
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

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


def _refuse_commit_past_deadline(session: Session, *_: Any) -> None:
    deadline = request_deadline.get()
    if deadline is None:
        return
    # The pending changes go out first (a flush may wait on a lock): the check is then
    # the last thing before COMMIT, one round trip before the database applies it.
    session.flush()
    if time.time() >= deadline:
        raise RequestDeadlinePassed(
            "The request's deadline passed before its write was committed; it was not applied."
        )


def refuse_commits_past_deadline() -> None:
    """Once per process: every Session's commit checks the request's deadline first."""
    if not event.contains(Session, "before_commit", _refuse_commit_past_deadline):
        event.listen(Session, "before_commit", _refuse_commit_past_deadline)
