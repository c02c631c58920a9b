"""The launcher behind `make run`: data survives restarts, signals leave no orphan."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from types import ModuleType

import anyio
import httpx
import nats
import pytest

from auth_service.db import migrate_database
from shop_common.events.testing import nats_test_url
from shop_common.services import WITH_DATABASE
from shop_common.testing import sqlite_url
from testsupport.processes import wait_until_answers
from testsupport.system import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    ROOT,
    System,
    launcher_env,
    start_system,
    stop_system,
)

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
def test_a_signal_to_the_launcher_stops_all_its_processes(tmp_path: Path, signum: int) -> None:
    system = start_system(tmp_path)
    services = children_of(system.process.pid)
    assert len(services) == 5  # gateway, three services, NATS
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
    env = launcher_env(tmp_path)
    make = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{env['GATEWAY_PORT']}/ready"
        wait_until_answers(url, make, status=200, timeout=90)
    except AssertionError:
        make.kill()
        raise
    launchers = children_of(make.pid)
    services = set().union(*(children_of(pid) for pid in launchers))
    make.send_signal(signal.SIGTERM)  # to make alone, not its group
    make.wait(timeout=30)
    assert wait_gone(launchers | services) == set()


def launcher() -> ModuleType:
    """scripts/run.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("launcher_under_test", ROOT / "scripts/run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def skipped(system: System) -> set[str]:
    """The services whose migrate step the launcher left out (database already at head)."""
    return {
        name
        for name in ("auth-service", "product-service", "order-service")
        if any(
            f"[run] {name}: database already at the latest migration" in line
            for line in system.output
        )
    }


def test_the_launcher_migrates_each_listed_database_with_the_services_own_files() -> None:
    """Where each database is and its version table: the list (tests/deploy checks the
    services agree with it); the migration files: found by the launcher without importing
    the service, the very directory the service migrates from."""
    module = launcher()
    assert WITH_DATABASE
    for service in WITH_DATABASE:
        db = importlib.import_module(f"{service.package}.db")
        assert module._migrations_dir(service.name) == db.MIGRATIONS_DIR


def test_a_second_start_skips_migrating_but_a_database_behind_is_migrated(tmp_path: Path) -> None:
    first = start_system(tmp_path)
    stop_system(first)
    assert skipped(first) == set()
    second = start_system(tmp_path)
    stop_system(second)
    assert skipped(second) == {"auth-service", "product-service", "order-service"}

    # auth's schema taken back to nothing: the next start must migrate it again.
    anyio.run(partial(migrate_database, sqlite_url(tmp_path, "auth.db"), "base", downgrade=True))
    third = start_system(tmp_path)
    try:
        assert skipped(third) == {"product-service", "order-service"}
        with httpx.Client(base_url=third.gateway, timeout=15) as client:
            login = client.post(
                "/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
        assert login.status_code == 200  # migrated, and the ADMIN created again
    finally:
        stop_system(third)


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


async def jetstream_messages(url: str, stream: str, publish: bool) -> int:
    client = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=10)
    try:
        js = client.jetstream()
        if publish:
            await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
            await js.publish(f"{stream.lower()}.kept", b"{}")
        info = await js.stream_info(stream)
        return info.state.messages
    finally:
        await client.close()


def test_the_launcher_runs_nats_with_jetstream_under_data_dir_and_stops_it(tmp_path: Path) -> None:
    first = start_system(tmp_path)
    try:
        children = children_of(first.process.pid)
        servers = {pid for pid in children if "nats-server" in command_line(pid)}
        assert len(servers) == 1
        for pid in children - servers:  # every service was told where NATS is
            assert environment(pid)["NATS_URL"] == first.nats
        assert anyio.run(jetstream_messages, first.nats, "KEPT", True) == 1
    finally:
        stop_system(first)
    assert wait_gone(servers) == set()
    assert (tmp_path / "nats" / "jetstream").is_dir()

    second = start_system(tmp_path)  # the stream was stored under DATA_DIR
    try:
        assert anyio.run(jetstream_messages, second.nats, "KEPT", False) == 1
    finally:
        stop_system(second)


def test_with_nats_url_set_the_launcher_starts_no_nats(tmp_path: Path) -> None:
    url = nats_test_url()
    system = start_system(tmp_path, NATS_URL=url)
    try:
        children = children_of(system.process.pid)
        assert len(children) == 4  # gateway and three services
        assert not any("nats-server" in command_line(pid) for pid in children)
        assert {environment(pid)["NATS_URL"] for pid in children} == {url}
    finally:
        stop_system(system)
