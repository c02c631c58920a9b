"""The launcher behind `make run`: data survives restarts, signals leave no orphan."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ROOT, start_system, stop_system

pytestmark = pytest.mark.e2e


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent pid; the command may hold spaces, so split after ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def wait_gone(pids: set[int], timeout: float = 20) -> set[int]:
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)


@pytest.mark.parametrize(
    "signum", [pytest.param(signal.SIGTERM, id="sigterm"), pytest.param(signal.SIGINT, id="sigint")]
)
def test_a_signal_to_the_launcher_stops_all_three_processes(tmp_path: Path, signum: int) -> None:
    system = start_system(tmp_path)
    services = children_of(system.process.pid)
    assert len(services) == 3
    assert stop_system(system, signum) == 0
    assert wait_gone(services) == set()


def test_a_signal_to_the_process_group_stops_everything(tmp_path: Path) -> None:
    system = start_system(tmp_path)
    services = children_of(system.process.pid)
    os.killpg(system.process.pid, signal.SIGINT)
    stop_system(system)
    assert wait_gone(services) == set()


def test_data_survives_a_restart(tmp_path: Path) -> None:
    first = start_system(tmp_path)
    email = "keep@example.com"
    with httpx.Client(base_url=first.gateway, timeout=15) as client:
        assert (
            client.post(
                "/auth/register", json={"name": "K", "email": email, "password": "password-123"}
            ).status_code
            == 201
        )
    stop_system(first)
    second = start_system(tmp_path)
    try:
        with httpx.Client(base_url=second.gateway, timeout=15) as client:
            login = client.post("/auth/login", json={"email": email, "password": "password-123"})
            assert login.status_code == 200
    finally:
        stop_system(second)


def test_make_run_stops_when_make_itself_is_terminated(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "BCRYPT_ROUNDS": "4",
        "SHOP_TESTING": "true",
        "GATEWAY_HOST": "127.0.0.1",
    }
    from tests.e2e.conftest import free_port

    for name in ("GATEWAY_PORT", "AUTH_PORT", "PRODUCT_PORT"):
        env[name] = str(free_port())
    make = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{env['GATEWAY_PORT']}/ready"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        make.kill()
        pytest.fail("make run did not become ready")
    launchers = children_of(make.pid)
    services = set().union(*(children_of(pid) for pid in launchers))
    make.send_signal(signal.SIGTERM)  # to make alone, not its group
    make.wait(timeout=30)
    assert wait_gone(launchers | services) == set()
