"""Two gateways, two auth-services, two product-services as processes, on PostgreSQL and
Redis: the cluster the scale-out tests kill, restart and cut off from the database."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shop_common.testing import (
    fresh_postgres_database,
    postgres_base_url,
    redis_url,
    write_credential_keys,
    write_gateway_keys,
)

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-1"
# Short enough for the suite's wall time, long enough for the gateways' probes (every
# 0.2 s here) to see an instance go not-ready before it stops accepting.
DRAIN_SECONDS = "1.0"
PROBE_SECONDS = "0.2"
START_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Instance:
    name: str
    module: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, "serve"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = 20) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """Wait for the exit (after a `terminate`); kill what outlives the grace."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Cluster:
    gateways: list[Instance]
    auths: list[Instance]
    products: list[Instance]
    product_database_url: str
    admin_token: str = ""
    product_ids: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[Instance]:
        return [*self.auths, *self.products, *self.gateways]

    async def wait_ready(self, instance: Instance) -> None:
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

    async def _ready_everywhere(self, client: httpx.AsyncClient, instance: Instance) -> bool:
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


def _migrate(module: str, env: dict[str, str], *extra: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, *(extra or ("migrate",))],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    base, redis = postgres_base_url(), redis_url()
    async with (
        fresh_postgres_database(base) as auth_db,
        fresh_postgres_database(base) as product_db,
    ):
        with _cluster(tmp_path_factory.mktemp("scaleout"), auth_db, product_db, redis) as made:
            await _start(made)
            yield made


class _cluster:
    """Builds the instances; on exit stops every process it started (no orphans)."""

    def __init__(self, data_dir: Path, auth_db: str, product_db: str, redis: str) -> None:
        run = secrets.token_hex(4)
        self.data_dir = data_dir
        common = {
            "PATH": os.environ.get("PATH", ""),
            "DATA_DIR": str(data_dir),
            "SHOP_TESTING": "true",
            "BCRYPT_ROUNDS": "4",
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": redis,
            "REVOCATION_REDIS_KEY": f"test:{run}:revoked",
            "SHUTDOWN_DRAIN_SECONDS": DRAIN_SECONDS,
            "SHUTDOWN_TIMEOUT_SECONDS": "5",
        }
        auth_env = {
            **common,
            "AUTH_HOST": "127.0.0.1",
            "AUTH_DATABASE_URL": auth_db,
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
        product_env = {**common, "PRODUCT_HOST": "127.0.0.1", "PRODUCT_DATABASE_URL": product_db}
        self.migrations = [("auth_service", auth_env), ("product_service", product_env)]

        def make(name: str, module: str, port_var: str, env: dict[str, str]) -> Instance:
            port = free_port()
            log = data_dir / f"{name}.log"
            return Instance(name, module, port, {**env, port_var: str(port)}, log)

        auths = [make(f"auth-{i}", "auth_service", "AUTH_PORT", auth_env) for i in (1, 2)]
        products = [
            make(f"product-{i}", "product_service", "PRODUCT_PORT", product_env) for i in (1, 2)
        ]
        gateway_env = {
            **common,
            "GATEWAY_HOST": "127.0.0.1",
            "AUTH_SERVICE_URL": ",".join(i.url for i in auths),
            "PRODUCT_SERVICE_URL": ",".join(i.url for i in products),
            "UPSTREAM_PROBE_SECONDS": PROBE_SECONDS,
            "UPSTREAM_TIMEOUT": "5",
            "RATE_LIMIT_KEY_PREFIX": f"test:{run}:limits",
            "RATE_LIMIT_PER_ADDRESS": "off",
        }
        gateways = [
            make(f"gateway-{i}", "api_gateway", "GATEWAY_PORT", gateway_env) for i in (1, 2)
        ]
        self.cluster = Cluster(gateways, auths, products, product_db)

    def __enter__(self) -> Cluster:
        write_gateway_keys(self.data_dir)
        write_credential_keys(self.data_dir, "order-service")  # product-service reads it
        for module, env in self.migrations:
            _migrate(module, env)
        _migrate("auth_service", self.migrations[0][1], "keys", "init")
        return self.cluster

    def __exit__(self, *exc: object) -> None:
        running = [i for i in self.cluster.all if i.process and i.process.poll() is None]
        for instance in running:  # all drain at once
            assert instance.process is not None
            instance.process.terminate()
        for instance in running:
            instance.stop()


async def _answers(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(url)).status_code == 200
    except httpx.TransportError:
        return False


async def _start(cluster: Cluster) -> None:
    # The first auth-service creates the admin; the rest start once it exists.
    first = cluster.auths[0]
    first.start()
    async with httpx.AsyncClient(timeout=2) as client:
        deadline = time.monotonic() + START_TIMEOUT
        while not await _answers(client, f"{first.url}/ready"):
            assert first.process is not None and first.process.poll() is None, first.log.read_text()
            assert time.monotonic() < deadline, first.log.read_text()
            await asyncio.sleep(0.1)
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
