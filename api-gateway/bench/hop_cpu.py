"""The gateway hop's CPU per request, this code against another checkout, alternating.

    PYTHONPATH=test-support python api-gateway/bench/hop_cpu.py /path/to/other/checkout [rounds]

For each round, one gateway process of each code (the other checkout's `*/src` put first
on PYTHONPATH, so the same interpreter and libraries run both) answers `GET /health` to
wrk -t2 -c32 for 5 s after a 1 s warm-up; its utime + stime from /proc divided by the
requests is the figure, which other work on a shared machine does not inflate the way it
does req/s. Figures: docs/decisions/gateway-edge-server.md.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testsupport.processes import free_port

SECONDS = 5


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(port: int, seconds: int) -> int:
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", f"http://127.0.0.1:{port}/health"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"(\d+) requests in", out)
    assert found is not None, out
    return int(found.group(1))


def measure(pythonpath: str | None) -> tuple[float, float]:
    """(gateway CPU µs per request, req/s) of one gateway process."""
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": tempfile.mkdtemp(prefix="hop-cpu-"),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "AUTH_PORT": str(free_port()),
        "PRODUCT_PORT": str(free_port()),
    }
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    process = subprocess.Popen(
        [sys.executable, "-m", "api_gateway", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        _wrk(port, 1)
        before = _cpu_seconds(process.pid)
        requests = _wrk(port, SECONDS)
        used = _cpu_seconds(process.pid) - before
        return used / requests * 1e6, requests / SECONDS
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    other = Path(sys.argv[1]).resolve()
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    other_path = os.pathsep.join(str(src) for src in sorted(other.glob("*/src")))
    for _ in range(rounds):
        for name, pythonpath in (("other", other_path), ("this", None)):
            micros, rate = measure(pythonpath)
            sys.stdout.write(f"{name}: {micros:.1f} µs CPU per request, {rate:,.0f} req/s\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
