"""The whole system as three processes, started by the same launcher as `make run`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class System:
    process: subprocess.Popen[bytes]
    gateway: str
    auth: str
    product: str
    order: str
    nats: str
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def wait_for_line(self, needle: str, timeout: float = 60, *, prefix: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.startswith(prefix) and needle in line for line in self.output):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not printed; output:\n" + "".join(self.output[-80:]))


def start_system(data_dir: Path, **extra_env: str) -> System:
    # NATS_PORT: the launcher's own NATS (when NATS_URL is not given) on a spare port too.
    ports = {
        name: free_port()
        for name in ("GATEWAY_PORT", "AUTH_PORT", "PRODUCT_PORT", "ORDER_PORT", "NATS_PORT")
    }
    env = {
        **os.environ,
        **{name: str(port) for name, port in ports.items()},
        "DATA_DIR": str(data_dir),
        "BCRYPT_ROUNDS": "4",
        "SHOP_TESTING": "true",
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GATEWAY_HOST": "127.0.0.1",
        **extra_env,
    }
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run.py")],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    system = System(
        process=process,
        gateway=f"http://127.0.0.1:{ports['GATEWAY_PORT']}",
        auth=f"http://127.0.0.1:{ports['AUTH_PORT']}",
        product=f"http://127.0.0.1:{ports['PRODUCT_PORT']}",
        order=f"http://127.0.0.1:{ports['ORDER_PORT']}",
        nats=extra_env.get("NATS_URL") or f"nats://127.0.0.1:{ports['NATS_PORT']}",
    )

    def collect() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            system.output.append(raw.decode(errors="replace"))

    system.reader = threading.Thread(target=collect, daemon=True)
    system.reader.start()
    system.wait_for_line("[run] ready in")
    return system


def stop_system(system: System, signum: int = signal.SIGTERM) -> int:
    if system.process.poll() is None:
        system.process.send_signal(signum)
    code = system.process.wait(timeout=30)
    if system.reader is not None:
        system.reader.join(timeout=10)
    if system.process.stdout is not None:
        system.process.stdout.close()
    return code


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = start_system(tmp_path_factory.mktemp("data"))
    yield running
    stop_system(running)


@pytest.fixture
def gateway(system: System) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.gateway, timeout=15) as client:
        yield client
