"""Several workers on one port: real processes, real signals, metrics that add up."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from uvicorn.config import STARTUP_FAILURE

from shop_common.database import create_engine
from shop_common.metrics import exposition
from shop_common.pool_metrics import PoolPublisher, read_pools
from shop_common.shutdown import serve
from shop_common.workers import STOP_SIGNALS, die_with_parent, serve_worker, serve_workers
from testsupport.processes import free_port, stop_process, wait_until_answers

APP_MODULE = """
import os
from fastapi import FastAPI
from shop_common.health import health_router
from shop_common.metrics import MetricsMiddleware, metrics_endpoint
from shop_common.shutdown import CloseWhileDraining

async def check_ready():
    return {"database": "ok"}

def create_app():
    app = FastAPI()
    app.include_router(health_router(check_ready))
    app.add_route("/metrics", metrics_endpoint)

    @app.get("/pid")
    async def pid():
        return os.getpid()

    app.add_middleware(MetricsMiddleware)
    app.add_middleware(CloseWhileDraining)
    return app
"""

SERVE = """
import sys
from shop_common.logging import configure_logging
from shop_common.shutdown import serve

configure_logging("test")
sys.exit(serve("workers_app:create_app", factory=True, workers=int(sys.argv[2]),
               drain_seconds=float(sys.argv[3]), timeout_graceful_shutdown=2,
               host="127.0.0.1", port=int(sys.argv[1]), log_config=None))
"""


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    asked: int = 0

    def output(self) -> str:
        return self.log.read_text()[-4000:]

    def pid(self) -> int:
        """The worker that answers a request on a fresh connection."""
        self.asked += 1
        pid: int = httpx.get(f"{self.url}/pid", timeout=5).json()
        return pid

    def worker_pids(self, workers: int) -> set[int]:
        """Ask on fresh connections until `workers` different processes have answered."""
        seen: set[int] = set()
        for _ in range(500):  # a bound on asking, not a time: the kernel picks the worker
            seen.add(self.pid())
            if len(seen) == workers:
                return seen
        raise AssertionError(f"only {sorted(seen)} answered:\n{self.output()}")


Start = Callable[..., Served]
PR_SET_PDEATHSIG, PR_GET_PDEATHSIG = 1, 2


@pytest.fixture
def start_workers(tmp_path: Path) -> Iterator[Start]:
    started: list[subprocess.Popen[bytes]] = []

    def start(workers: int, drain_seconds: float = 0) -> Served:
        (tmp_path / "workers_app.py").write_text(APP_MODULE)
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-c", SERVE, str(port), str(workers), str(drain_seconds)],
                cwd=tmp_path,
                # A SIGKILLed parent leaves its metrics directory: in tmp_path then.
                env={**os.environ, "PYTHONPATH": str(tmp_path), "TMPDIR": str(tmp_path)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        served = Served(process, f"http://127.0.0.1:{port}", log)
        wait_until_answers(f"{served.url}/health", process, output=served.output)
        return served

    yield start
    for process in started:
        stop_process(process)


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pids: set[int], served: Served, bound: float = 20) -> None:
    deadline = time.monotonic() + bound  # a bound on waiting, not a speed claim
    while any(running(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise AssertionError(f"workers {sorted(pids)} outlived the parent:\n{served.output()}")
        time.sleep(0.1)


def requests_counted(url: str, route: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels["route"] == route
    )


def test_requests_spread_over_two_workers_add_up_on_metrics(start_workers: Start) -> None:
    served = start_workers(2)
    served.worker_pids(2)  # both have answered, so both have counted
    answered = {served.pid() for _ in range(40)}
    assert requests_counted(served.url, "/pid") == served.asked
    assert len(answered) == 2  # the total is not one worker's: both served these
    text = httpx.get(f"{served.url}/metrics", timeout=5).text
    assert "http_requests_in_flight 1.0" in text  # the scrape itself, in one worker


def test_sigterm_drains_every_worker_then_the_parent_exits(start_workers: Start) -> None:
    served = start_workers(2, drain_seconds=1.5)
    pids = served.worker_pids(2)
    served.process.send_signal(signal.SIGTERM)
    seen_draining: set[int] = set()
    for _ in range(200):  # both workers, each on a fresh connection, until both answered
        with httpx.Client(timeout=5) as client:
            ready = client.get(f"{served.url}/ready")
            if ready.status_code != 503:
                continue
            seen_draining.add(client.get(f"{served.url}/pid").json())
        if seen_draining == pids:
            break
    assert seen_draining == pids, served.output()  # each drains: 503 on /ready, still serving
    assert served.process.wait(timeout=20) == 0, served.output()
    wait_gone(pids, served)


@pytest.mark.parametrize(
    "signum",
    [pytest.param(signal.SIGKILL, id="sigkill"), pytest.param(signal.SIGINT, id="sigint")],
)
def test_workers_do_not_outlive_their_parent(start_workers: Start, signum: int) -> None:
    served = start_workers(2)
    pids = served.worker_pids(2)
    served.process.send_signal(signum)
    served.process.wait(timeout=20)
    wait_gone(pids, served)


def test_a_worker_that_dies_is_replaced(start_workers: Start) -> None:
    served = start_workers(2)
    pids = served.worker_pids(2)
    os.kill(min(pids), signal.SIGKILL)
    deadline = time.monotonic() + 30  # a bound on waiting for the replacement
    while served.pid() in pids:
        assert time.monotonic() < deadline, served.output()
    assert served.process.poll() is None


# The supervisor in this process (the workers it forks run the app): what its parent side
# does is measured by coverage, which the processes above are not.
STOP_WHEN_SERVED = """
import os, signal, sys, time, httpx
url, parent, kill_one = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "kill-one"

def answer():
    for _ in range(600):
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.1)

victim = answer()
if kill_one:  # a worker dies; the stop comes once another process answers
    os.kill(victim, signal.SIGKILL)
    while answer() == victim:
        pass
os.kill(parent, signal.SIGTERM)
"""


def supervise(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    factory: str,
    stop_on: str | None,
    kill_one: bool = False,
) -> int:
    (tmp_path / "workers_app.py").write_text(
        APP_MODULE + "\ndef broken_app():\n    raise RuntimeError('no app today')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    handlers = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    port = free_port()
    stopper = None
    if stop_on is not None:
        stopper = subprocess.Popen(
            [sys.executable, "-c", STOP_WHEN_SERVED, f"http://127.0.0.1:{port}{stop_on}"]
            + [str(os.getpid()), "kill-one" if kill_one else "stop"]
        )
    config = uvicorn.Config(
        f"workers_app:{factory}", factory=True, host="127.0.0.1", port=port, log_config=None
    )
    try:
        return serve_workers(config, workers=2, drain_seconds=0)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        if stopper is not None:
            stopper.kill()
            stopper.wait()


def test_the_supervisor_stops_its_workers_on_sigterm_and_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = set(Path(tempfile.gettempdir()).glob("shop-metrics-*"))
    assert supervise(tmp_path, monkeypatch, "create_app", stop_on="/pid") == 0
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # this process counts alone again
    assert set(Path(tempfile.gettempdir()).glob("shop-metrics-*")) <= made  # files removed


def test_the_supervisor_replaces_a_worker_that_died(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stop comes only after a replacement answered, so 0 says it was replaced.
    assert supervise(tmp_path, monkeypatch, "create_app", stop_on="/pid", kill_one=True) == 0


def test_a_worker_whose_app_cannot_start_reports_a_startup_failure(tmp_path: Path) -> None:
    (tmp_path / "broken_factory.py").write_text("def app():\n    raise RuntimeError('no')\n")
    config = uvicorn.Config(
        "broken_factory:app", factory=True, host="127.0.0.1", port=0, log_config=None
    )
    sys.path.insert(0, str(tmp_path))
    handlers = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    try:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            assert serve_worker(config, listener, drain_seconds=0) == STARTUP_FAILURE
    finally:
        sys.path.remove(str(tmp_path))
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def test_a_worker_asks_for_sigterm_when_its_parent_dies() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    current = ctypes.c_int()
    libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(current))
    try:
        die_with_parent()
        asked = ctypes.c_int()
        libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(asked))
        assert asked.value == signal.SIGTERM
    finally:
        libc.prctl(PR_SET_PDEATHSIG, current.value)  # pytest itself keeps what it had


def test_an_app_that_cannot_start_stops_the_service_with_status_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert supervise(tmp_path, monkeypatch, "broken_app", stop_on=None) == 1


def test_several_workers_refuse_an_app_built_before_the_fork() -> None:
    with pytest.raises(TypeError, match="factory"):
        serve(FastAPI(), drain_seconds=0, timeout_graceful_shutdown=1, workers=2)


@pytest.mark.anyio
async def test_each_workers_pool_readings_reach_the_shared_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a worker's pool thread writes is what any worker's /metrics then reads."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}", pool_size=3)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            checked_out, idle, _, size, _ = read_pools()
            shared = tmp_path / "metrics"  # *.db files only: the collector reads them all
            shared.mkdir()
            monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
            monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())  # type: ignore[no-untyped-call]
            PoolPublisher().publish()
            text_ = exposition().decode()
    finally:
        await engine.dispose()
    samples = {
        (sample.name, sample.labels.get("state")): sample.value
        for family in text_string_to_metric_families(text_)
        for sample in family.samples
    }
    # Read from the files, not from this process's registry (which has python_info).
    assert not any(name.startswith("python_") for name, _ in samples)
    assert checked_out >= 1 and size >= 3  # this test's engine, and any other test's
    assert samples[("db_pool_size", None)] == size
    assert samples[("db_pool_connections", "checked_out")] == checked_out
    assert samples[("db_pool_connections", "idle")] == idle
