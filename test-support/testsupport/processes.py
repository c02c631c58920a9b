"""Ports and processes: find a free port, start a server process, wait until it answers,
stop it (kill what outlives the grace)."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

# Bounds on waiting, not speed claims: a loaded two-core CI machine may take this long.
START_TIMEOUT = 60.0
STOP_GRACE = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_answers(
    url: str,
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
    *,
    status: int | None = None,
    timeout: float = START_TIMEOUT,
    output: Callable[[], str] = lambda: "",
) -> httpx.Response:
    """GET `url` until it answers (with `status`, when given); a failure naming the
    process's `output` when the process exits first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            response = httpx.get(url, timeout=2)
            if status is None or response.status_code == status:
                return response
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{url}: the process exited ({process.returncode}):\n{output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: no answer within {timeout} s:\n{output()}")
        time.sleep(0.1)


def stop_process(
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    signum: int | None = signal.SIGTERM,
    grace: float = STOP_GRACE,
) -> int:
    """Send `signum` if it still runs (None: it was signalled already), wait `grace`, kill
    what outlives it; its exit code."""
    if signum is not None and process.poll() is None:
        process.send_signal(signum)
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@dataclass
class ServiceProcess:
    """One service (`python -m <module> serve`) on a port, its output in a log file."""

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
        self.process = start_service(self.module, self.env, self.log)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = 20) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # What it was doing is in its log (a stuck shutdown names its tasks there).
            raise AssertionError(
                f"{self.module} still running {timeout} s after the signal:\n"
                + self.log.read_text()[-4000:]
            ) from None

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        wait_until_answers(
            f"{self.url}/ready",
            self.process,
            status=200,
            timeout=timeout,
            output=lambda: self.log.read_text()[-4000:],
        )

    def stop(self) -> None:
        """Wait for the exit (after a `terminate`); kill what outlives the grace."""
        if self.process is not None:
            stop_process(self.process, None)


def start_service(
    module: str, env: Mapping[str, str], log: Path, *command: str
) -> subprocess.Popen[bytes]:
    """`python -m <module> serve` (or `command`) in a session of its own, output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, *(command or ("serve",))],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_command(module: str, env: Mapping[str, str], *command: str) -> None:
    """`python -m <module> <command>` to completion; a failure with its output otherwise."""
    result = subprocess.run(
        [sys.executable, "-m", module, *command],
        env=dict(env),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
