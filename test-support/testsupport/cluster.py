"""Several instances of every service as processes on one PostgreSQL and one Redis: the
clusters the scale-out and fault tests kill, restart and cut off from their servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shop_common.services import UPSTREAMS
from shop_common.testing import write_credential_keys, write_gateway_keys
from testsupport.processes import START_TIMEOUT, ServiceProcess, free_port, run_command
from testsupport.system import ADMIN_EMAIL, ADMIN_PASSWORD


@dataclass
class Cluster:
    gateways: list[ServiceProcess]
    auths: list[ServiceProcess]
    products: list[ServiceProcess]
    product_database_url: str
    admin_token: str = ""
    product_ids: list[str] = field(default_factory=list)
    # (module, environment) of each service whose database `prepare_cluster` migrates.
    migrations: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def all(self) -> list[ServiceProcess]:
        return [*self.auths, *self.products, *self.gateways]

    async def wait_ready(self, instance: ServiceProcess) -> None:
        """Its own /ready is 200 and, for a service, every gateway probes it "ok"."""
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if await self._ready_everywhere(client, instance):
                    return
                assert instance.process is not None
                if instance.process.poll() is not None:
                    raise AssertionError(f"{instance.name} exited:\n{instance.log.read_text()}")
                assert time.monotonic() < deadline, f"{instance.name} not ready in time"
                await asyncio.sleep(0.1)

    async def _ready_everywhere(self, client: httpx.AsyncClient, instance: ServiceProcess) -> bool:
        try:
            if (await client.get(f"{instance.url}/ready")).status_code != 200:
                return False
            if instance in self.gateways:
                return True
            for gateway in self.gateways:
                report = (await client.get(f"{gateway.url}/ready")).json()
                states = {
                    url: state
                    for service in report.get("instances", {}).values()
                    for url, state in service.items()
                }
                if states.get(instance.url) != "ok":
                    return False
        except httpx.TransportError:
            return False
        return True


def build_cluster(
    data_dir: Path,
    *,
    auth_database_url: str,
    product_database_url: str,
    redis_url: str,
    gateways: int = 2,
    settings: dict[str, str] | None = None,
    gateway_settings: dict[str, str] | None = None,
) -> Cluster:
    """Two auth-services, two product-services and `gateways` gateways (not started yet);
    `settings` go to every process, `gateway_settings` to the gateways only."""
    run = secrets.token_hex(4)
    common = {
        "PATH": os.environ.get("PATH", ""),
        "DATA_DIR": str(data_dir),
        "SHOP_TESTING": "true",
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": redis_url,
        "REVOCATION_REDIS_KEY": f"test:{run}:revoked",
        "SHUTDOWN_TIMEOUT_SECONDS": "5",
        **(settings or {}),
    }
    auth_env = {
        **common,
        "AUTH_HOST": "127.0.0.1",
        "AUTH_DATABASE_URL": auth_database_url,
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    product_env = {
        **common,
        "PRODUCT_HOST": "127.0.0.1",
        "PRODUCT_DATABASE_URL": product_database_url,
    }

    def make(name: str, module: str, port_var: str, env: dict[str, str]) -> ServiceProcess:
        port = free_port()
        env = {**env, port_var: str(port)}
        return ServiceProcess(name, module, port, env, data_dir / f"{name}.log")

    auths = [make(f"auth-{i}", "auth_service", "AUTH_PORT", auth_env) for i in (1, 2)]
    products = [
        make(f"product-{i}", "product_service", "PRODUCT_PORT", product_env) for i in (1, 2)
    ]
    gateway_env = {
        **common,
        "GATEWAY_HOST": "127.0.0.1",
        "AUTH_SERVICE_URL": ",".join(i.url for i in auths),
        "PRODUCT_SERVICE_URL": ",".join(i.url for i in products),
        "RATE_LIMIT_KEY_PREFIX": f"test:{run}:limits",
        "RATE_LIMIT_PER_ADDRESS": "off",
        **(gateway_settings or {}),
    }
    made = [
        make(f"gateway-{i}", "api_gateway", "GATEWAY_PORT", gateway_env)
        for i in range(1, gateways + 1)
    ]
    migrations = [("auth_service", auth_env), ("product_service", product_env)]
    return Cluster(made, auths, products, product_database_url, migrations=migrations)


def prepare_cluster(cluster: Cluster, data_dir: Path) -> None:
    """The gateway's key pair and every service's own (product-service reads
    order-service's), every database migrated, auth-service's signing keys."""
    write_gateway_keys(data_dir)
    for service in UPSTREAMS:
        write_credential_keys(data_dir, service.name)
    for module, env in cluster.migrations:
        run_command(module, env, "migrate")
    run_command("auth_service", cluster.migrations[0][1], "keys", "init")


async def start_cluster(cluster: Cluster) -> None:
    """Every process started and ready, the admin logged in, five products seeded."""
    # The first auth-service creates the admin; the rest start once it exists.
    first = cluster.auths[0]
    first.start()
    await asyncio.to_thread(first.wait_ready)
    for instance in cluster.all:
        if instance is not first:
            instance.start()
    for instance in cluster.gateways:
        await cluster.wait_ready(instance)
    for instance in [*cluster.auths, *cluster.products]:
        await cluster.wait_ready(instance)
    async with httpx.AsyncClient(base_url=cluster.gateways[0].url, timeout=10) as client:
        login = await client.post(
            "/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        cluster.admin_token = login.json()["access_token"]
        headers = {"Authorization": f"Bearer {cluster.admin_token}"}
        for n in range(5):
            created = await client.post(
                "/products",
                json={"name": f"seed {n}", "price": 10, "sku": f"SEED-{secrets.token_hex(5)}"},
                headers=headers,
            )
            assert created.status_code == 201, created.text
            cluster.product_ids.append(created.json()["id"])


async def stop_cluster(cluster: Cluster) -> None:
    """Every process still running drains at once; what outlives the grace is killed."""
    running = [i for i in cluster.all if i.process and i.process.poll() is None]
    for instance in running:
        assert instance.process is not None
        instance.process.terminate()
    for instance in running:
        await asyncio.to_thread(instance.stop)


@contextlib.asynccontextmanager
async def running_cluster(cluster: Cluster, data_dir: Path) -> AsyncIterator[Cluster]:
    """The cluster prepared and started; every process stopped afterwards, whatever failed."""
    try:
        prepare_cluster(cluster, data_dir)
        await start_cluster(cluster)
        yield cluster
    finally:
        await stop_cluster(cluster)
