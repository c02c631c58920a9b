"""Start the whole system as three processes: what `make run` and the e2e tests use.

Prepares keys and databases, starts auth-service, product-service and api-gateway,
prefixes each one's log lines with its name, waits until the gateway is ready, and
on SIGINT or SIGTERM (or when make, its parent, goes away) stops all three.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

from shop_common.keys import ensure_ed25519_keypair

SERVICES = ("auth-service", "product-service", "api-gateway")
STOP_GRACE_SECONDS = 10
READY_TIMEOUT_SECONDS = 60


def _module(service: str) -> str:
    return service.replace("-", "_")


def _die_with_parent() -> None:
    """Linux: ask the kernel to SIGTERM this process when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _gateway_url() -> str:
    host = os.environ.get("GATEWAY_HOST", "0.0.0.0")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{os.environ.get('GATEWAY_PORT', '5000')}"


def _say(line: str) -> None:
    sys.stdout.write(f"[run] {line}\n")
    sys.stdout.flush()


async def _relay(name: str, stream: asyncio.StreamReader) -> None:
    prefix = f"[{name}] ".encode()
    out = sys.stdout.buffer
    while line := await stream.readline():
        out.write(prefix + line if line.endswith(b"\n") else prefix + line + b"\n")
        out.flush()


async def _step(*args: str) -> None:
    """Run a preparation command (migrate, keys) and stop everything if it fails."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    assert process.stdout is not None
    await _relay(args[0].replace("_", "-"), process.stdout)
    if await process.wait() != 0:
        raise SystemExit(f"`python -m {' '.join(args)}` failed; see the lines above")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


async def _wait_until_ready(url: str, processes: dict[str, asyncio.subprocess.Process]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not await asyncio.to_thread(_ready, url):
        for name, process in processes.items():
            if process.returncode is not None:
                raise SystemExit(f"{name} exited with status {process.returncode} during start")
        if time.monotonic() > deadline:
            raise SystemExit(f"the gateway was not ready within {READY_TIMEOUT_SECONDS} s")
        await asyncio.sleep(0.1)


async def _stop(processes: dict[str, asyncio.subprocess.Process]) -> None:
    for process in processes.values():
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(p.wait() for p in processes.values())), STOP_GRACE_SECONDS
        )
    except TimeoutError:
        for process in processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        await asyncio.gather(*(p.wait() for p in processes.values()))


async def _watch_parent(stop: asyncio.Event) -> None:
    parent = os.getppid()
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
        await asyncio.sleep(0.5)


async def main() -> int:
    data_dir = Path(os.environ.setdefault("DATA_DIR", "data")).resolve()
    os.environ["DATA_DIR"] = str(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    keys = data_dir / "keys" / "gateway"
    ensure_ed25519_keypair(keys / "private.pem", keys / "public.pem")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    watcher = asyncio.create_task(_watch_parent(stop))

    started = time.monotonic()
    await asyncio.gather(
        _step("auth_service", "keys", "init"),
        _step("auth_service", "migrate"),
        _step("product_service", "migrate"),
    )
    processes: dict[str, asyncio.subprocess.Process] = {}
    relays = []
    for name in SERVICES:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            _module(name),
            "serve",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        assert process.stdout is not None
        processes[name] = process
        relays.append(asyncio.create_task(_relay(name, process.stdout)))

    url = _gateway_url()
    exit_code = 0
    try:
        ready = asyncio.create_task(_wait_until_ready(url, processes))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            ready.result()
            _announce(url, time.monotonic() - started)
            exits = [asyncio.create_task(p.wait()) for p in processes.values()]
            await asyncio.wait({stopped, *exits}, return_when=asyncio.FIRST_COMPLETED)
            for name, process in processes.items():
                if process.returncode is not None and not stop.is_set():
                    _say(f"{name} exited with status {process.returncode}; stopping the others")
                    exit_code = 1
        else:
            ready.cancel()
    except SystemExit as exc:
        _say(str(exc))
        exit_code = 1
    finally:
        _say("stopping")
        await _stop(processes)
        await asyncio.gather(*relays, return_exceptions=True)
        watcher.cancel()
    _say("stopped")
    return exit_code


def _announce(url: str, seconds: float) -> None:
    public = url.replace("127.0.0.1", "localhost")
    _say(f"ready in {seconds:.1f} s")
    _say(f"API:      {public}")
    _say(f"API docs: {public}/api-docs")
    admin = os.environ.get("ADMIN_EMAIL")
    if admin:
        _say(f"admin:    {admin} (password from ADMIN_PASSWORD)")
    _say("press Ctrl-C to stop")


if __name__ == "__main__":
    _die_with_parent()
    try:
        sys.exit(asyncio.run(main()))
    except SystemExit as exc:
        if isinstance(exc.code, str):
            _say(exc.code)
            sys.exit(1)
        raise
