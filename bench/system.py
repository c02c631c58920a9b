"""The system under test: started by the bench on PostgreSQL, or one already running.

Started: two fresh databases on the BENCH_DATABASE_URL server, a temporary DATA_DIR, free
ports (never 5000-5002), production settings (bcrypt cost 12, no SHOP_TESTING), limits
raised so the bench's single address is not throttled, and scripts/run.py, the same
launcher as `make run`, whose output goes to a log file. Attached (BENCH_URL): nothing is
started or dropped; the direct scenario needs BENCH_PRODUCT_URL and the gateway's key.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
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
from bench.procs import cpu_seconds, die_with_parent, pid_listening_on
from shop_common.services import GATEWAY, SERVICES, WITH_DATABASE, service_named

ROOT = Path(__file__).resolve().parent.parent
# The two services the scenarios call directly besides the gateway.
AUTH, PRODUCT = service_named("auth-service"), service_named("product-service")
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


@dataclass
class System:
    gateway_url: str
    product_url: str | None
    auth_url: str | None
    gateway_key: Path | None
    product_database_url: str | None
    databases: list[str] = field(default_factory=list)
    launcher_pid: int | None = None
    ready_s: float | None = None
    # CPU seconds the launcher, its preparation steps and the three services used to get
    # there: what a busy machine stretches ready_s by, it does not change this.
    ready_cpu_s: float | None = None
    log_path: Path | None = None

    def pids(self) -> dict[str, int]:
        """The pid of each process that listens on a local port of the system."""
        found: dict[str, int] = {}
        for name, url in (
            (GATEWAY.name, self.gateway_url),
            (AUTH.name, self.auth_url),
            (PRODUCT.name, self.product_url),
        ):
            parts = urlsplit(url) if url else None
            if parts is not None and parts.hostname in ("127.0.0.1", "localhost", "::1"):
                pid = pid_listening_on(parts.port or 80)
                if pid is not None:
                    found[name] = pid
        if self.launcher_pid is not None:
            found["launcher"] = self.launcher_pid
        return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
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
        gateway_key=Path(key) if Path(key).is_file() else None,
        product_database_url=os.environ.get("BENCH_PRODUCT_DATABASE_URL") or None,
    )


class Launch:
    """Start the system; `stop()` ends every process and drops every database it made."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.tag = f"bench_{secrets.token_hex(4)}"
        self.workdir = Path(tempfile.mkdtemp(prefix="shop-bench-"))
        self.process: asyncio.subprocess.Process | None = None
        self.system: System | None = None
        self._created: list[str] = []

    async def start(self) -> System:
        # A fresh database for every service that keeps one (shop_common.services).
        database_urls: dict[str, str] = {}
        for service in WITH_DATABASE:
            assert service.database_setting is not None
            name = f"{self.tag}_{service.settings_prefix.lower()}"
            await self._admin(f'CREATE DATABASE "{name}"')
            self._created.append(name)
            database_urls[service.database_setting] = (
                make_url(self.base_url).set(database=name).render_as_string(hide_password=False)
            )

        # Every service of the list on a spare port, and run.py's own NATS.
        names = (*(service.port_setting for service in SERVICES), "NATS_PORT")
        ports = {name: free_port() for name in names}
        env = {key: value for key, value in os.environ.items() if key not in _INHERITED}
        env.update({key: str(port) for key, port in ports.items()})
        env.update(
            DATA_DIR=str(self.workdir / "data"),
            GATEWAY_HOST="127.0.0.1",
            **database_urls,
            BCRYPT_ROUNDS=os.environ.get("BCRYPT_ROUNDS", "12"),
            RATE_LIMIT_PER_ADDRESS=GENEROUS_LIMIT,
            RATE_LIMIT_LOGIN_PER_ADDRESS=GENEROUS_LIMIT,
            RATE_LIMIT_LOGIN_PER_EMAIL=GENEROUS_LIMIT,
            RATE_LIMIT_REGISTER_PER_ADDRESS=GENEROUS_LIMIT,
            RATE_LIMIT_REGISTER_PER_EMAIL=GENEROUS_LIMIT,
        )
        log_path = self.workdir / "system.log"
        gateway_url = f"http://127.0.0.1:{ports[GATEWAY.port_setting]}"
        with open(log_path, "ab") as log:  # O_APPEND: the bench may truncate it meanwhile
            started = time.monotonic()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(ROOT / "scripts" / "run.py"),
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the bench, which stops it in order
                preexec_fn=die_with_parent,
            )
        while not await asyncio.to_thread(ready, gateway_url):
            if self.process.returncode is not None:
                raise BenchError(f"the system did not start:\n{tail(log_path)}")
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise BenchError(f"not ready within {READY_TIMEOUT_S} s:\n{tail(log_path)}")
            await asyncio.sleep(0.05)
        self.system = System(
            gateway_url=gateway_url,
            product_url=f"http://127.0.0.1:{ports[PRODUCT.port_setting]}",
            auth_url=f"http://127.0.0.1:{ports[AUTH.port_setting]}",
            gateway_key=self.workdir / "data" / "keys" / "gateway" / "private.pem",
            product_database_url=database_urls[PRODUCT.database_setting or ""],
            databases=list(self._created),
            launcher_pid=self.process.pid,
            ready_s=time.monotonic() - started,
            log_path=log_path,
        )
        services = [pid for name, pid in self.system.pids().items() if name != "launcher"]
        spent = [cpu_seconds(pid) for pid in services]
        spent.append(cpu_seconds(self.process.pid, reaped_children=True))
        self.system.ready_cpu_s = sum(value for value in spent if value is not None)
        return self.system

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
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


def drain_log(path: Path | None, scenario: str) -> None:
    """Say how many ERROR lines the system logged during a run, then empty the log."""
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
