"""A cluster of its own for fault injection: a PostgreSQL server and a Redis started here
on spare ports (they get stopped, restarted and killed), two auth-services, two
product-services and one gateway as processes."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from testsupport.cluster import Cluster, build_cluster, running_cluster
from testsupport.processes import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MAX_CONNECTIONS = 40
POOL_SIZE = 4  # 4 service processes x (4 + 1 probe) = 20 of the 40 slots


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@dataclass
class Postgres:
    data: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
            f" -c max_connections={MAX_CONNECTIONS} -c fsync=off"
        )
        self.ctl("-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-w", "-m", mode, "stop")


@dataclass
class Redis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    if not (PG_BIN / "initdb").exists() or shutil.which("redis-server") is None:
        pytest.skip(
            "the faults suite needs PostgreSQL 15 server binaries (initdb) and redis-server"
        )
    root = Path(tempfile.mkdtemp(prefix="faults-pg-"))
    shutil.chown(root, "postgres") if os.geteuid() == 0 else None
    server = Postgres(root / "data", free_port(), root / "server.log")
    subprocess.run(
        _as_postgres(
            str(PG_BIN / "initdb"), "-D", str(server.data), "-A", "trust", "-U", "postgres"
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    server = Redis(free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def create_database(postgres: Postgres, name: str) -> str:
    connection = await asyncpg.connect(postgres.url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:{postgres.port}/{name}"


@pytest.fixture(scope="module")
async def cluster(
    postgres: Postgres, redis: Redis, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    auth_db = await create_database(postgres, "auth")
    product_db = await create_database(postgres, "product")
    data_dir = tmp_path_factory.mktemp("faults")
    made = build_cluster(
        data_dir,
        auth_database_url=auth_db,
        product_database_url=product_db,
        redis_url=redis.url,
        gateways=1,
        settings={"SHUTDOWN_DRAIN_SECONDS": "1.0", "DATABASE_POOL_SIZE": str(POOL_SIZE)},
        gateway_settings={"UPSTREAM_PROBE_SECONDS": "0.5", "UPSTREAM_TIMEOUT": "10"},
    )
    # The processes inherit it: 2,000 concurrent connections need more than 1,024 files.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 16384 if hard == resource.RLIM_INFINITY else min(hard, 16384)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    async with running_cluster(made, data_dir) as running:
        yield running


async def wait_until(check: object, timeout: float, what: str) -> float:
    """Poll an async predicate; the seconds it took."""
    started = time.monotonic()
    while True:
        assert callable(check)
        if await check():
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.2)
