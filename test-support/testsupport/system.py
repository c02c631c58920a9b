"""The whole system as processes, started by the same launcher as `make run` (scripts/run.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from shop_common.services import SERVICES
from testsupport.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-1"


@dataclass
class System:
    process: subprocess.Popen[bytes]
    urls: dict[str, str]  # service name (shop_common.services) -> its URL
    nats: str
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def gateway(self) -> str:
        return self.urls["api-gateway"]

    @property
    def auth(self) -> str:
        return self.urls["auth-service"]

    @property
    def product(self) -> str:
        return self.urls["product-service"]

    @property
    def order(self) -> str:
        return self.urls["order-service"]

    def wait_for_line(self, needle: str, timeout: float = 60, *, prefix: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.startswith(prefix) and needle in line for line in self.output):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not printed; output:\n" + "".join(self.output[-80:]))


def launcher_env(data_dir: Path, **extra_env: str) -> dict[str, str]:
    """The launcher's environment: every port a spare one, fast test settings, `extra_env`
    last."""
    # NATS_PORT: the launcher's own NATS (when NATS_URL is not given) on a spare port too.
    ports = (*(service.port_setting for service in SERVICES), "NATS_PORT")
    return {
        **os.environ,
        **{name: str(free_port()) for name in ports},
        "DATA_DIR": str(data_dir),
        "BCRYPT_ROUNDS": "4",
        "SHOP_TESTING": "true",
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GATEWAY_HOST": "127.0.0.1",
        **extra_env,
    }


def start_system(data_dir: Path, **extra_env: str) -> System:
    env = launcher_env(data_dir, **extra_env)
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
        urls={s.name: f"http://127.0.0.1:{env[s.port_setting]}" for s in SERVICES},
        nats=extra_env.get("NATS_URL") or f"nats://127.0.0.1:{env['NATS_PORT']}",
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
    code = stop_process(system.process, signum, grace=30)
    if system.reader is not None:
        system.reader.join(timeout=10)
    if system.process.stdout is not None:
        system.process.stdout.close()
    return code
