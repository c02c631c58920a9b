"""Pooled connections go to waiting requests in arrival order, and none is ever lost."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncIterator
from typing import NoReturn

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from sqlalchemy.util.queue import Empty, Full, QueueCommon

from shop_common.database import create_engine
from shop_common.fair_pool import FairAsyncQueuePool, HandoffQueue

pytestmark = pytest.mark.anyio


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=5)
    try:
        yield engine
    finally:
        await engine.dispose()


def fair_pool(engine: AsyncEngine) -> FairAsyncQueuePool:
    pool = engine.sync_engine.pool
    assert isinstance(pool, FairAsyncQueuePool)
    return pool


async def until_waiting(engine: AsyncEngine, count: int) -> None:
    for _ in range(1000):
        if fair_pool(engine).waiting() == count:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"{fair_pool(engine).waiting()} waiting, not {count}")


async def use(engine: AsyncEngine, name: str, served: list[str]) -> None:
    async with engine.connect() as connection:
        served.append(name)
        await connection.execute(text("SELECT 1"))


async def test_a_returned_connection_goes_to_the_longest_waiter_not_back_to_its_holder(
    one_connection: AsyncEngine,
) -> None:
    served: list[str] = []
    holder = await one_connection.connect()
    await holder.execute(text("SELECT 1"))
    first = asyncio.create_task(use(one_connection, "first", served))
    await until_waiting(one_connection, 1)
    second = asyncio.create_task(use(one_connection, "second", served))
    await until_waiting(one_connection, 2)

    await holder.close()
    # Asks again the moment its connection is back, before either waiter has run: the
    # stock asyncio pool hands it the connection and sends "first" behind "second"
    # (["again", "second", "first"]).
    await use(one_connection, "again", served)
    await asyncio.gather(first, second)

    assert served == ["first", "second", "again"]
    assert fair_pool(one_connection).checkedout() == 0


async def test_a_waiter_that_times_out_gets_an_error_and_leaves_the_pool_whole(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.05)
    try:
        holder = await engine.connect()
        await holder.execute(text("SELECT 1"))
        with pytest.raises(exc.TimeoutError):
            await engine.connect()
        assert fair_pool(engine).waiting() == 0
        await holder.close()
        async with engine.connect() as connection:  # at once: nobody stale ahead of it
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
        assert fair_pool(engine).checkedin() == 1
    finally:
        await engine.dispose()


async def test_a_waiter_cancelled_as_it_is_handed_a_connection_passes_it_on(
    one_connection: AsyncEngine,
) -> None:
    served: list[str] = []
    holder = await one_connection.connect()
    await holder.execute(text("SELECT 1"))
    doomed = asyncio.create_task(use(one_connection, "doomed", served))
    await until_waiting(one_connection, 1)
    patient = asyncio.create_task(use(one_connection, "patient", served))
    await until_waiting(one_connection, 2)

    await holder.close()  # hands the connection to `doomed`...
    doomed.cancel()  # ...which is cancelled (a client gone) before it runs
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await patient

    assert served == ["patient"]
    pool = fair_pool(one_connection)
    assert (pool.checkedout(), pool.checkedin(), pool.waiting()) == (0, 1, 0)


def test_items_wait_in_order_and_the_queue_refuses_more_than_it_holds() -> None:
    fifo: HandoffQueue[int] = HandoffQueue(maxsize=2)
    fifo.put(1)
    fifo.put(2)
    with pytest.raises(Full):
        fifo.put(3)
    assert (fifo.qsize(), fifo.full()) == (2, True)
    assert [fifo.get(block=False), fifo.get(block=False)] == [1, 2]
    with pytest.raises(Empty):
        fifo.get(block=False)

    lifo: HandoffQueue[int] = HandoffQueue(maxsize=2, use_lifo=True)
    lifo.put(1)
    lifo.put(2)
    assert lifo.get(block=False) == 2


# What fair_pool.py relies on in SQLAlchemy's private code (pinned to one minor in
# shop-common's pyproject; docs/decisions/private-internals.md): an upgrade that changes
# any of it fails here by name, not as a slow tail in the bench.


def never_connects() -> NoReturn:
    raise AssertionError("the pool was not asked for a connection")


def test_sqlalchemy_builds_the_pools_queue_from_its_queue_class() -> None:
    pool = FairAsyncQueuePool(never_connects, pool_size=2, max_overflow=0)
    assert isinstance(pool._pool, HandoffQueue)
    assert pool._pool.maxsize == 2


def test_every_queue_method_sqlalchemys_pool_calls_is_the_hand_off_queues_own() -> None:
    called = set(re.findall(r"self\._pool\.(\w+)", inspect.getsource(QueuePool)))
    assert called  # the pool still reaches its queue through self._pool
    for name in called:
        assert hasattr(HandoffQueue, name) or name in ("maxsize", "use_lifo"), name
        if callable(getattr(QueueCommon, name, None)):
            assert getattr(HandoffQueue, name) is not getattr(QueueCommon, name), name
