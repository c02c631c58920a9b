"""Each image's command line, run as a local process, starts the service and answers /health.

The compose file is followed as Docker would: the one-shot steps (keys, migrations) run
first in their dependency order, then the three servers, each with its Dockerfile's
ENTRYPOINT + CMD (or the compose override) and the environment the image and the compose
file give it. What only a container has is swapped for a local equivalent: each container's
/data is a temporary directory of its own, where each named volume it mounts is a link to
the volume's one directory (so a volume is shared, at whatever path each mounts it, as in
compose), PostgreSQL is a SQLite file, Redis and NATS are left out (events wait in the
outboxes), ports are ephemeral, and the compose service names in URLs resolve to 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.deploy.conftest import ENV_EXAMPLE, ROOT, SERVICES, read_dotenv
from testsupport.processes import free_port

if TYPE_CHECKING:
    from tests.deploy.conftest import Dockerfile

START_TIMEOUT = 60
ONE_SHOT_TIMEOUT = 120


@dataclass
class Container:
    """A compose service run as a process: its command line and its environment."""

    name: str
    argv: list[str]
    env: dict[str, str]


class LocalCompose:
    def __init__(
        self, compose: dict[str, Any], dockerfiles: dict[str, Dockerfile], tmp: Path
    ) -> None:
        self.compose = compose
        self.dockerfiles = dockerfiles
        self.data = tmp / "data"  # the SQLite files standing in for PostgreSQL's databases
        self.data.mkdir()
        self.volumes = tmp / "volumes"
        self.tmp = tmp
        self.ports = {service.name: free_port() for service in SERVICES}

    def dockerfile_of(self, name: str) -> Dockerfile:
        build = self.compose["services"][name]["build"]
        return self.dockerfiles[build["dockerfile"].split("/")[0]]

    def container(self, name: str) -> Container:
        spec = self.compose["services"][name]
        dockerfile = self.dockerfile_of(name)
        entrypoint = spec.get("entrypoint", dockerfile.exec_form("ENTRYPOINT"))
        command = spec.get("command", dockerfile.exec_form("CMD"))
        env = {
            name: value for name, value in dockerfile.env().items() if name != "PATH"
        }  # the image's PATH holds its venv; here that is sys.executable's
        env.update(read_dotenv(ENV_EXAMPLE))
        env.update({key: str(value) for key, value in spec.get("environment", {}).items()})
        self.mount_volumes(name)
        argv = self.localise_argv(name, [*entrypoint, *command])
        return Container(name, argv, self.localise(name, env))

    def root(self, name: str) -> Path:
        """The container's /data."""
        return self.tmp / "containers" / name / "data"

    def mount_volumes(self, name: str) -> None:
        """Each `volume:/data/...` of the service: a link from its path in this container's
        /data to the volume's directory, which every container mounting it shares."""
        root = self.root(name)
        root.mkdir(parents=True, exist_ok=True)
        for entry in self.compose["services"][name].get("volumes", []):
            volume, _, rest = str(entry).partition(":")
            target = rest.split(":")[0]
            if volume not in self.compose.get("volumes", {}) or not target.startswith("/data/"):
                continue
            shared = self.volumes / volume
            shared.mkdir(parents=True, exist_ok=True)
            link = root / target.removeprefix("/data/")
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(shared, target_is_directory=True)

    def localise_argv(self, name: str, argv: list[str]) -> list[str]:
        assert argv[0] == "python", argv
        return [sys.executable, *(self.path(name, arg) for arg in argv[1:])]

    def path(self, name: str, value: str) -> str:
        """Container paths: /data -> the container's own data dir, /app/x -> the
        repository's file."""
        if value == "/data" or value.startswith("/data/"):
            return str(self.root(name)) + value[len("/data") :]
        if value == "/app/healthcheck.py":
            return str(ROOT / "deploy" / "docker" / "healthcheck.py")
        return value

    def localise(self, name: str, env: dict[str, str]) -> dict[str, str]:
        local = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.tmp)}
        for key, value in env.items():
            value = self.path(name, value)
            if key.endswith("_DATABASE_URL"):
                database = key.removesuffix("_DATABASE_URL").lower()
                value = f"sqlite+aiosqlite:///{self.data / database}.db"
            elif key == "REDIS_URL":
                continue  # compose's Redis is not here; the gateway then limits in-process
            elif key == "NATS_URL":
                continue  # nor its NATS: the services serve, their events wait in the outbox
            elif key.endswith("_HOST"):
                value = "127.0.0.1"
            for service in SERVICES:
                if key == f"{service.prefix}_PORT":
                    value = str(self.ports[service.name])
                value = re.sub(
                    rf"http://{service.name}:{service.port}\b",
                    f"http://127.0.0.1:{self.ports[service.name]}",
                    value,
                )
            local[key] = value
        return local

    def order(self) -> list[str]:
        """Our services (not postgres/redis), dependencies first, as compose starts them."""
        services = self.compose["services"]
        ours = [name for name, spec in services.items() if "build" in spec]
        done: list[str] = []

        def visit(name: str) -> None:
            if name in done or name not in ours:
                return
            for dependency in services[name].get("depends_on", {}):
                visit(dependency)
            done.append(name)

        for name in ours:
            visit(name)
        return done

    def is_one_shot(self, name: str) -> bool:
        return bool(self.compose["services"][name].get("restart") == "no")


@dataclass
class Running:
    container: Container
    process: subprocess.Popen[bytes]
    log: Path


def healthcheck(local: LocalCompose, container: Container) -> subprocess.CompletedProcess[str]:
    command = local.dockerfile_of(container.name).healthcheck()
    return subprocess.run(
        local.localise_argv(container.name, command),
        env=container.env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def wait_healthy(local: LocalCompose, running: Running) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            break
        if healthcheck(local, running.container).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(
        f"{running.container.name} did not become healthy:\n{running.log.read_text()[-4000:]}"
    )


def stop(running: Running) -> None:
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
        try:
            running.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()


@pytest.fixture(scope="module")
def system(
    compose: dict[str, Any],
    dockerfiles: dict[str, Dockerfile],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalCompose, dict[str, Running]]]:
    local = LocalCompose(compose, dockerfiles, tmp_path_factory.mktemp("compose"))
    servers: dict[str, Running] = {}
    try:
        for name in local.order():
            container = local.container(name)
            log = local.tmp / f"{name}.log"
            if local.is_one_shot(name):
                result = subprocess.run(
                    container.argv,
                    env=container.env,
                    capture_output=True,
                    text=True,
                    timeout=ONE_SHOT_TIMEOUT,
                    check=False,
                )
                assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
                continue
            with log.open("wb") as output:
                process = subprocess.Popen(
                    container.argv,
                    env=container.env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            servers[name] = Running(container, process, log)
            # depends_on: service_healthy, as compose waits before starting the next.
            wait_healthy(local, servers[name])
        yield local, servers
    finally:
        for running in servers.values():
            stop(running)


def test_compose_starts_our_services_after_their_one_shot_steps(
    system: tuple[LocalCompose, dict[str, Running]],
) -> None:
    local, servers = system
    order = local.order()
    assert set(servers) == {service.name for service in SERVICES}
    assert order.index("migrate-auth") < order.index("auth-service")
    assert order.index("migrate-product") < order.index("product-service")
    assert order.index("gateway-keys") < order.index("product-service")
    assert order.index("migrate-order") < order.index("order-service")
    assert order.index("order-service-keys") < order.index("product-service")
    assert order.index("product-service") < order.index("order-service")
    assert order[-1] == "api-gateway"


@pytest.mark.parametrize("service", [pytest.param(s, id=s.name) for s in SERVICES])
def test_the_image_command_line_serves_health_on_the_configured_port(
    system: tuple[LocalCompose, dict[str, Running]], service: Any
) -> None:
    local, servers = system
    running = servers[service.name]
    assert running.container.argv[1:] == ["-m", service.package, "serve"]
    assert healthcheck(local, running.container).returncode == 0
    response = httpx.get(f"http://127.0.0.1:{local.ports[service.name]}/health", timeout=5)
    assert response.status_code == 200


def test_the_gateway_is_ready_through_the_compose_wiring(
    system: tuple[LocalCompose, dict[str, Running]],
) -> None:
    """Ready needs both services reachable at the URLs, keys and schemas compose sets up."""
    local, _servers = system
    url = f"http://127.0.0.1:{local.ports['api-gateway']}/ready"
    deadline = time.monotonic() + 30
    response = httpx.get(url, timeout=5)
    while response.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        response = httpx.get(url, timeout=5)
    assert response.status_code == 200, response.text


def test_a_request_passes_the_gateway_with_its_credential(
    system: tuple[LocalCompose, dict[str, Running]],
) -> None:
    """The services accept the gateway's key from the shared public-key volume."""
    local, _servers = system
    gateway = f"http://127.0.0.1:{local.ports['api-gateway']}"
    response = httpx.get(f"{gateway}/products?limit=1", timeout=10)
    assert response.status_code == 200, response.text
    # Straight to the service, without the credential: refused.
    direct = httpx.get(f"http://127.0.0.1:{local.ports['product-service']}/products", timeout=5)
    assert direct.status_code in (401, 403)


def test_orders_pass_the_gateway_to_order_service_with_a_users_credential(
    system: tuple[LocalCompose, dict[str, Running]],
) -> None:
    """ORDER_SERVICE_URL, the gateway's key in order-service's mount, its own database."""
    local, _servers = system
    gateway = f"http://127.0.0.1:{local.ports['api-gateway']}"
    account = {"name": "Buyer", "email": "buyer@example.com", "password": "a-long-passphrase-1"}
    with httpx.Client(base_url=gateway, timeout=10) as client:
        assert client.get("/orders").status_code == 401
        assert client.post("/auth/register", json=account).status_code == 201
        login = client.post("/auth/login", json={k: account[k] for k in ("email", "password")})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        listed = client.get("/orders", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []
    direct = httpx.get(f"http://127.0.0.1:{local.ports['order-service']}/orders", timeout=5)
    assert direct.status_code in (401, 403)


def test_the_healthcheck_fails_when_nothing_listens_on_the_port(
    system: tuple[LocalCompose, dict[str, Running]],
) -> None:
    local, servers = system
    container = servers["auth-service"].container
    moved = Container(container.name, container.argv, {**container.env, "AUTH_PORT": "1"})
    assert healthcheck(local, moved).returncode == 1
