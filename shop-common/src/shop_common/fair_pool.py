"""A connection pool that hands connections to waiting requests in arrival order.

SQLAlchemy's asyncio pool queues connections in an `asyncio.Queue`, which lets a new
request take a connection that was just returned before the longest waiter wakes up,
and sends a waiter that lost that race to the back of the line. At more concurrent
requests than connections the tail grows in laps of the whole line: list pages at c=32
on a pool of 16 had a p50 of 18 ms and a p99 of 540-740 ms
(docs/decisions/database-pool.md). Here a returned connection goes straight to the
longest waiter, so a request waits its turn and no more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util.concurrency import await_
from sqlalchemy.util.queue import Empty, Full, QueueCommon

_T = TypeVar("_T")


class HandoffQueue(QueueCommon[_T]):
    """First come, first served: `put` gives an item to the oldest live waiter, if any.

    Items wait in the queue only while nobody waits for one, so a `get` that finds an
    item never overtakes a waiter.
    """

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self._items: deque[_T] = deque()
        self._waiters: deque[asyncio.Future[_T]] = deque()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        return len(self._items)

    def waiting(self) -> int:
        """Requests waiting for an item now."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def put_nowait(self, item: _T) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        if self.full():
            raise Full()
        self._items.append(item)

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:  # noqa: ARG002
        # QueueCommon's signature; the pool returns connections without blocking, and
        # never more than maxsize of them.
        self.put_nowait(item)

    def get_nowait(self) -> _T:
        if not self._items:
            raise Empty()
        return self._items.pop() if self.use_lifo else self._items.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        if self._items or not block:
            return self.get_nowait()
        try:
            return await_(self._wait(timeout))
        except TimeoutError:
            raise Empty() from None

    async def _wait(self, timeout: float | None) -> _T:
        waiter: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Handed a connection just as the wait ended (timeout, cancelled request):
                # pass it on rather than lose it.
                self.put_nowait(waiter.result())
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise


class FairAsyncQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio QueuePool with connections handed out in arrival order."""

    _queue_class = HandoffQueue[ConnectionPoolEntry]
    # Log as the stock pool does: under "sqlalchemy", quiet unless echo_pool is set.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"
    _pool: HandoffQueue[ConnectionPoolEntry]

    def waiting(self) -> int:
        """Checkouts waiting for a connection now (what db_pool_waiting shows)."""
        return self._pool.waiting()
