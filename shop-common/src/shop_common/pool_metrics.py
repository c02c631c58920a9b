"""Database pool use as Prometheus gauges, read from the pools at scrape time.

A collector asks each live engine's pool when /metrics is scraped, so checking a
connection in or out costs nothing extra. Engines are held weakly: one disposed and
dropped (tests make many) leaves the sums. `engine.dispose()` replaces the pool, so the
engine, not the pool, is what is remembered.

With several workers (PROMETHEUS_MULTIPROC_DIR set) no worker can read another's pools at
scrape time, so each copies its readings into gauges the workers' files add up, once a
second from a thread of its own: the figures are then at most that old.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Iterator

from prometheus_client import REGISTRY, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, QueuePool
from sqlalchemy.ext.asyncio import AsyncEngine

from shop_common.fair_pool import FairAsyncQueuePool

_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
PUBLISH_EVERY_SECONDS = 1.0


def read_pools() -> tuple[int, int, int, int, int]:
    """checked out, idle, overflow, size and waiting, summed over the live engines."""
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
    return checked_out, idle, overflow, size, waiting


class PoolCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        checked_out, idle, overflow, size, waiting = read_pools()
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


class PoolPublisher:
    """Several workers: this worker's readings copied into gauges every second."""

    def __init__(self) -> None:
        self.connections = Gauge(
            "db_pool_connections",
            "Database connections by state (checked_out, idle, overflow)",
            ["state"],
            multiprocess_mode="livesum",
            registry=None,  # read from the workers' files; PoolCollector has the names
        )
        self.size = Gauge(
            "db_pool_size",
            "Connections the pools keep (overflow comes on top)",
            multiprocess_mode="livesum",
            registry=None,  # read from the workers' files; PoolCollector has the names
        )
        self.waiting = Gauge(
            "db_pool_waiting",
            "Requests waiting for a pooled connection",
            multiprocess_mode="livesum",
            registry=None,  # read from the workers' files; PoolCollector has the names
        )
        self._started = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._started:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pool-metrics", daemon=True)
                self._thread.start()

    def publish(self) -> None:
        checked_out, idle, overflow, size, waiting = read_pools()
        self.connections.labels("checked_out").set(checked_out)
        self.connections.labels("idle").set(idle)
        self.connections.labels("overflow").set(overflow)
        self.size.set(size)
        self.waiting.set(waiting)

    def _run(self) -> None:
        while True:  # a daemon thread: it ends with the process
            # The event loop may change a pool's waiters while this reads them: that
            # reading is skipped, the next one a second later counts.
            with contextlib.suppress(RuntimeError):
                self.publish()
            time.sleep(PUBLISH_EVERY_SECONDS)


# One process: read at scrape time. Several workers answer /metrics from their shared
# files instead, which this collector's readings never reach.
REGISTRY.register(PoolCollector())
_publisher: PoolPublisher | None = None


def watch_pool(engine: AsyncEngine) -> None:
    """Count this engine's pool in db_pool_connections from now on."""
    global _publisher
    _ENGINES.add(engine.sync_engine)
    # Decided at the first engine, not at import: a worker forked from a parent that
    # imported this module learns only now that it is one of several.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        if _publisher is None:
            _publisher = PoolPublisher()
        _publisher.start()
