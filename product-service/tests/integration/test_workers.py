"""product-service with WEB_CONCURRENCY=2 as a real process: requests spread over both
workers, and /metrics counts all of them."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from product_service.config import SERVICE_NAME
from shop_common.testing import GatewayKeys
from testsupport.processes import ServiceProcess, free_port
from testsupport.product import migrated_database

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]
ROUTE = "/products/{id}"
REQUESTS = 60


def children(service: ServiceProcess) -> list[int]:
    assert service.process is not None
    pid = service.process.pid
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as listing:
        return [int(child) for child in listing.read().split()]


def counted(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels["route"] == ROUTE
    )


async def test_two_workers_metrics_count_every_request(
    tmp_path: Path, data_dir: Path, gateway_keys: GatewayKeys
) -> None:
    async for database_url in migrated_database("postgres", tmp_path):
        env = {key: value for key, value in os.environ.items() if not key.startswith("PRODUCT_")}
        env.update(
            PRODUCT_DATABASE_URL=database_url,
            PRODUCT_PORT=str(free_port()),
            DATA_DIR=str(data_dir),
            WEB_CONCURRENCY="2",
            SHUTDOWN_DRAIN_SECONDS="0",
        )
        env.pop("NATS_URL", None)
        service = ServiceProcess(
            "product-service",
            "product_service",
            int(env["PRODUCT_PORT"]),
            env,
            tmp_path / "product.log",
        )
        service.start()
        try:
            service.wait_ready()
            workers = children(service)
            assert len(workers) == 2, service.log.read_text()[-4000:]
            # A fresh connection per request: the kernel hands them to both workers.
            with httpx.Client(auth=gateway_keys.auth(SERVICE_NAME), timeout=5) as client:
                for _ in range(REQUESTS):
                    response = client.get(
                        f"{service.url}/products/{uuid.uuid4()}", headers={"Connection": "close"}
                    )
                    assert response.status_code == 404, response.text
            # Whichever worker answers the scrape, it reports both workers' requests (that
            # the kernel spreads fresh connections over both: shop-common's test_workers).
            for _ in range(4):
                assert counted(service.url) == REQUESTS
        finally:
            service.signal(signal.SIGTERM)
            assert service.wait_exit() == 0, service.log.read_text()[-4000:]
