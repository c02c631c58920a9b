"""What the attack tests share: running systems, clients from chosen addresses, accounts.

Every test talks to real processes started by the e2e launcher helper (`start_system`).
A client can bind its socket to any 127.0.0.0/8 address, so tests that count requests
per client address each get their own address, and therefore their own limits, inside
one shared system.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from testsupport.processes import free_port, start_service, stop_process, wait_until_answers
from testsupport.system import ADMIN_EMAIL, ADMIN_PASSWORD, System, start_system, stop_system

PASSWORD = "correct horse battery"
# The contract's bound for revocations (logout, reuse, role change) to reach every gateway.
REVOCATION_SECONDS = 5.0
# How long a test waits for something that must happen: a timeout against a hung system,
# not a speed claim (speed is `make bench`'s business).
EVENTUALLY_SECONDS = 60.0
# Limits high enough for the tests that are not about them; the
# rate-limit tests start systems with small ones.
GENEROUS_LIMITS = {
    "RATE_LIMIT_LOGIN_PER_ADDRESS": "10000 per minute",
    "RATE_LIMIT_REGISTER_PER_ADDRESS": "10000 per hour",
    "RATE_LIMIT_PER_ADDRESS": "100000 per minute",
}


@dataclass
class Shop:
    """One running system, the settings it was started with, and its data directory."""

    system: System
    data_dir: Path
    env: dict[str, str]
    _addresses: Iterator[int] = field(default_factory=lambda: itertools.count(10))

    @property
    def gateway(self) -> str:
        return self.system.gateway

    def new_address(self) -> str:
        """A loopback address no other test of this system has used as its client."""
        return f"127.0.0.{next(self._addresses)}"

    def client(self, source: str = "127.0.0.1", base_url: str | None = None) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=source)
        return httpx.Client(base_url=base_url or self.gateway, transport=transport, timeout=15)

    def output(self) -> str:
        return "".join(self.system.output)


@contextlib.contextmanager
def running_shop(data_dir: Path, **env: str) -> Iterator[Shop]:
    system = start_system(data_dir, **env)
    try:
        yield Shop(system=system, data_dir=data_dir, env=env)
    finally:
        stop_system(system)
        # Kept with pytest's temporary directories, for reading after a failure.
        (data_dir / "system.log").write_text("".join(system.output))


@contextlib.contextmanager
def second_gateway(shop: Shop, **overrides: str) -> Iterator[str]:
    """Another gateway process in front of the same services,
    with the system's settings and `overrides`."""
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(shop.data_dir),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "AUTH_SERVICE_URL": shop.system.auth,
        "PRODUCT_SERVICE_URL": shop.system.product,
        "ORDER_SERVICE_URL": shop.system.order,
        **shop.env,
        **overrides,
    }
    log_path = shop.data_dir / f"gateway-{port}.log"
    process = start_service("api_gateway", env, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(
            f"{url}/ready", process, status=200, output=lambda: log_path.read_text()[-4000:]
        )
        yield url
    finally:
        stop_process(process)


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    password: str


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def random_email() -> str:
    return f"sec-{secrets.token_hex(6)}@example.com"


def register(client: httpx.Client, password: str = PASSWORD) -> Account:
    email = random_email()
    response = client.post(
        "/auth/register", json={"name": "Mallory", "email": email, "password": password}
    )
    assert response.status_code == 201, response.text
    return Account(id=response.json()["id"], email=email, password=password)


def login(client: httpx.Client, email: str, password: str) -> Tokens:
    response = client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    return Tokens(access_token=body["access_token"], refresh_token=body["refresh_token"])


def new_user(client: httpx.Client) -> tuple[Account, Tokens]:
    account = register(client)
    return account, login(client, account.email, account.password)


def admin_tokens(client: httpx.Client) -> Tokens:
    return login(client, ADMIN_EMAIL, ADMIN_PASSWORD)


def create_product(client: httpx.Client, tokens: Tokens, **fields: Any) -> dict[str, Any]:
    body = {"name": f"Lamp {secrets.token_hex(3)}", "price": 10, **fields}
    response = client.post("/products", headers=tokens.headers, json=body)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


def wait_for_status(
    request: Callable[[], httpx.Response], status: int, within: float = REVOCATION_SECONDS
) -> float:
    """Repeat `request` until it answers `status`; the seconds that took, or a failure."""
    started = time.monotonic()
    while True:
        response = request()
        elapsed = time.monotonic() - started
        if response.status_code == status:
            return elapsed
        if elapsed > within:
            raise AssertionError(
                f"still {response.status_code} after {elapsed:.1f} s, expected {status}: "
                f"{response.text[:300]}"
            )
        time.sleep(0.2)


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/problem+json")


def problem_without_request_id(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    body.pop("request_id", None)
    return body


def log_lines(shop: Shop, request_id: str, within: float = 3.0) -> list[dict[str, Any]]:
    """The JSON log lines of every process of `shop` that carry this request id, once a
    security event is among them (or `within` seconds have passed)."""
    deadline = time.monotonic() + within
    while True:
        lines = []
        for raw in shop.output().splitlines():
            _, _, text = raw.partition("] ")
            if request_id in text and text.startswith("{"):
                lines.append(json.loads(text))
        if any("security_event" in line for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)
