"""Two gateways, two auth-services, two product-services as processes, on PostgreSQL and
Redis: the cluster the scale-out tests kill, restart and cut off from the database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shop_common.testing import fresh_postgres_database, postgres_base_url, redis_url
from testsupport.cluster import Cluster, build_cluster, running_cluster

# Short enough for the suite's wall time, long enough for the gateways' probes (every
# 0.2 s here) to see an instance go not-ready before it stops accepting.
DRAIN_SECONDS = "1.0"
PROBE_SECONDS = "0.2"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    base, redis = postgres_base_url(), redis_url()
    async with (
        fresh_postgres_database(base) as auth_db,
        fresh_postgres_database(base) as product_db,
    ):
        data_dir = tmp_path_factory.mktemp("scaleout")
        made = build_cluster(
            data_dir,
            auth_database_url=auth_db,
            product_database_url=product_db,
            redis_url=redis,
            settings={"SHUTDOWN_DRAIN_SECONDS": DRAIN_SECONDS},
            gateway_settings={"UPSTREAM_PROBE_SECONDS": PROBE_SECONDS, "UPSTREAM_TIMEOUT": "5"},
        )
        async with running_cluster(made, data_dir) as running:
            yield running
