"""Several instances of every service: killed, restarted, cut off from PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from tests.scaleout.load import load, sku_counts, terminate_backends
from testsupport.cluster import Cluster
from testsupport.processes import ServiceProcess

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]


async def kill_and_restart(instance: ServiceProcess) -> None:
    instance.signal(signal.SIGKILL)
    await asyncio.to_thread(instance.wait_exit)
    instance.start()


async def test_killed_instances_lose_no_read_and_no_acknowledged_write(cluster: Cluster):
    product, auth = cluster.products[0], cluster.auths[0]
    async with load(cluster, writes=0.25) as outcome:
        await asyncio.sleep(3)
        await kill_and_restart(product)
        await asyncio.sleep(4)
        await kill_and_restart(auth)
        await asyncio.sleep(7)
    # The killed instances rejoin: both gateways probe them "ok" again.
    await cluster.wait_ready(product)
    await cluster.wait_ready(auth)

    assert outcome.failed_reads == [], outcome.statuses
    assert outcome.statuses["GET 200"] > 200, outcome.statuses  # the load was real
    assert len(outcome.created) > 20, outcome.statuses
    counts = await sku_counts(cluster.product_database_url, outcome.created)
    assert sorted(counts) == sorted(outcome.created)  # every acknowledged write is stored
    assert set(counts.values()) == {1}  # and none twice


async def test_a_rolling_restart_under_load_fails_no_request(cluster: Cluster):
    async with load(cluster, writes=0) as outcome:
        await asyncio.sleep(1)
        for instance in cluster.all:
            instance.signal(signal.SIGTERM)
            code = await asyncio.to_thread(instance.wait_exit)
            assert code in (0, -signal.SIGTERM), instance.log.read_text()
            instance.start()
            await cluster.wait_ready(instance)
        await asyncio.sleep(0.5)

    assert outcome.failed_reads == [], outcome.statuses
    assert set(outcome.statuses) <= {"GET 200"}, outcome.statuses
    assert outcome.requests > 200


async def test_a_lost_database_connection_fails_cleanly_and_recovers(cluster: Cluster):
    async with load(cluster, writes=0.3, auth_reads=0) as outcome:
        await asyncio.sleep(1)
        assert await terminate_backends(cluster.product_database_url) > 0
        await asyncio.sleep(1)
        await terminate_backends(cluster.product_database_url)
        await asyncio.sleep(1.5)

    # Clean: every answer a success or a 503 (never a 500, a 502 or a timeout's 504).
    clean = {"GET 200", "GET 503", "POST 201", "POST 503"}
    assert set(outcome.statuses) <= clean, outcome.statuses
    # And the service recovers by itself: every instance answers again within seconds.
    headers = {"Authorization": f"Bearer {cluster.admin_token}"}
    deadline = time.monotonic() + 10
    for gateway in cluster.gateways:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            for _ in range(4):  # both product instances, in turn
                while True:
                    response = await client.get(
                        f"/products/{cluster.product_ids[0]}", headers=headers
                    )
                    if response.status_code == 200 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
                assert response.status_code == 200, response.text
