"""Database pool use as Prometheus gauges, read from the pools at scrape time.

A collector asks each live engine's pool when /metrics is scraped, so checking a
connection in or out costs nothing extra. Engines are held weakly: one disposed and
dropped (tests make many) leaves the sums. `engine.dispose()` replaces the pool, so the
engine, not the pool, is what is remembered.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, QueuePool
from sqlalchemy.ext.asyncio import AsyncEngine

from shop_common.fair_pool import FairAsyncQueuePool

_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


class PoolCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        checked_out = idle = overflow = size = waiting = 0
        for engine in list(_ENGINES):
            pool = engine.pool
            # QueuePool and its async variant count; NullPool and StaticPool do not.
            if not isinstance(pool, QueuePool):
                continue
            checked_out += pool.checkedout()
            idle += pool.checkedin()
            overflow += max(pool.overflow(), 0)  # negative while under pool_size
            size += pool.size()
            if isinstance(pool, FairAsyncQueuePool):
                waiting += pool.waiting()
        connections = GaugeMetricFamily(
            "db_pool_connections",
            "Database connections by state (checked_out, idle, overflow)",
            labels=["state"],
        )
        connections.add_metric(["checked_out"], checked_out)
        connections.add_metric(["idle"], idle)
        connections.add_metric(["overflow"], overflow)
        yield connections
        yield GaugeMetricFamily(
            "db_pool_size", "Connections the pools keep (overflow comes on top)", value=size
        )
        yield GaugeMetricFamily(
            "db_pool_waiting", "Requests waiting for a pooled connection", value=waiting
        )


REGISTRY.register(PoolCollector())


def watch_pool(engine: AsyncEngine) -> None:
    """Count this engine's pool in db_pool_connections from now on."""
    _ENGINES.add(engine.sync_engine)
