"""Brute force and resource exhaustion (API4, API6): login, registration and every other
route are limited per client address and per email, X-Forwarded-For is believed only
from a trusted proxy, and each refusal is a 429 with Retry-After and an audit line.

One system with small limits; every test uses client addresses of its own (the client
binds 127.0.0.x), so the tests do not share counters.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.security.support import (
    PASSWORD,
    Account,
    Shop,
    log_lines,
    login,
    random_email,
    register,
    running_shop,
    second_gateway,
)
from testsupport.processes import free_port

pytestmark = pytest.mark.e2e

TRUSTED_PROXY = "127.0.0.2"
LOGIN_PER_EMAIL = 3
LOGIN_PER_ADDRESS = 5
REGISTER_PER_EMAIL = 2
REGISTER_PER_ADDRESS = 4
PER_ADDRESS = 10
LIMITS = {
    "RATE_LIMIT_LOGIN_PER_EMAIL": f"{LOGIN_PER_EMAIL} per minute",
    "RATE_LIMIT_LOGIN_PER_ADDRESS": f"{LOGIN_PER_ADDRESS} per minute",
    "RATE_LIMIT_REGISTER_PER_EMAIL": f"{REGISTER_PER_EMAIL} per hour",
    "RATE_LIMIT_REGISTER_PER_ADDRESS": f"{REGISTER_PER_ADDRESS} per hour",
    # An hour: the sliding-window counter weighs the previous window, so a minute that
    # ends mid-test let one request too many through.
    "RATE_LIMIT_PER_ADDRESS": f"{PER_ADDRESS} per hour",
    "TRUSTED_PROXIES": TRUSTED_PROXY,
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with running_shop(tmp_path_factory.mktemp("limits"), **LIMITS) as running:
        yield running


def fresh_account(shop: Shop) -> Account:
    """An account registered from an address no test counts against."""
    with shop.client(shop.new_address()) as client:
        return register(client)


def attempt_login(
    client: httpx.Client, email: str, password: str = "wrong password", **headers: str
) -> httpx.Response:
    return client.post("/auth/login", json={"email": email, "password": password}, headers=headers)


def assert_rate_limited(response: httpx.Response, window: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= window, retry_after


def test_brute_force_login_per_email_gets_429_even_with_the_correct_password(
    shop: Shop,
) -> None:
    account = fresh_account(shop)
    with shop.client(shop.new_address()) as attacker:
        for _ in range(LOGIN_PER_EMAIL):
            assert attempt_login(attacker, account.email).status_code == 401
        assert_rate_limited(attempt_login(attacker, account.email), 60)
    # The limit is the email's, from any address, whatever the spelling, right or wrong.
    with shop.client(shop.new_address()) as elsewhere:
        assert_rate_limited(attempt_login(elsewhere, account.email, PASSWORD), 60)
        spelled = f" {account.email.upper()}  "
        assert_rate_limited(attempt_login(elsewhere, spelled, PASSWORD), 60)
        other = fresh_account(shop)
        assert attempt_login(elsewhere, other.email, PASSWORD).status_code == 200


def test_brute_force_login_per_address_gets_429(shop: Shop) -> None:
    with shop.client(shop.new_address()) as attacker:
        for _ in range(LOGIN_PER_ADDRESS):
            assert attempt_login(attacker, random_email()).status_code == 401
        assert_rate_limited(attempt_login(attacker, random_email()), 60)
        # Refused before the password is looked at: the right one does not help either.
        account = fresh_account(shop)
        assert_rate_limited(attempt_login(attacker, account.email, PASSWORD), 60)
    with shop.client(shop.new_address()) as neighbour:
        assert attempt_login(neighbour, random_email()).status_code == 401


def test_x_forwarded_for_spoofing_does_not_escape_the_per_address_limit(shop: Shop) -> None:
    def spoofed(n: int) -> dict[str, str]:
        fake = f"198.51.100.{n}"
        return {
            "X-Forwarded-For": fake,
            "X-Real-IP": fake,
            "Forwarded": f"for={fake}",
            "True-Client-IP": fake,
            "CF-Connecting-IP": fake,
        }

    with shop.client(shop.new_address()) as attacker:
        statuses = [
            attempt_login(attacker, random_email(), **spoofed(n)).status_code
            for n in range(LOGIN_PER_ADDRESS + 1)
        ]
        assert statuses == [401] * LOGIN_PER_ADDRESS + [429]
    with shop.client(shop.new_address()) as reader:
        reads = [
            reader.get("/products", headers=spoofed(n)).status_code for n in range(PER_ADDRESS + 1)
        ]
        assert reads == [200] * PER_ADDRESS + [429]


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(shop: Shop) -> None:
    with shop.client(TRUSTED_PROXY) as proxy:
        # The control: behind the trusted proxy, distinct clients have their own limits.
        distinct = [
            attempt_login(proxy, random_email(), **{"X-Forwarded-For": f"192.0.2.{n}"}).status_code
            for n in range(LOGIN_PER_ADDRESS + 1)
        ]
        assert distinct == [401] * (LOGIN_PER_ADDRESS + 1)
        # A client that prepends made-up hops is still the address the proxy saw.
        chained = [
            attempt_login(
                proxy, random_email(), **{"X-Forwarded-For": f"10.9.8.{n}, 203.0.113.77"}
            ).status_code
            for n in range(LOGIN_PER_ADDRESS + 1)
        ]
        assert chained == [401] * LOGIN_PER_ADDRESS + [429]


def test_resource_exhaustion_every_route_is_limited_per_address_except_health(
    shop: Shop,
) -> None:
    with shop.client(shop.new_address()) as flooder:
        reads = [flooder.get("/products").status_code for _ in range(PER_ADDRESS)]
        assert reads == [200] * PER_ADDRESS
        assert_rate_limited(flooder.get("/products"), 3600)
        assert_rate_limited(flooder.get("/auth/jwks.json"), 3600)
        assert_rate_limited(flooder.get("/products/00000000-0000-0000-0000-000000000000"), 3600)
        for path in ("/health", "/ready", "/metrics"):
            assert flooder.get(path).status_code == 200, path
    with shop.client(shop.new_address()) as neighbour:
        assert neighbour.get("/products").status_code == 200


def test_registration_is_limited_per_address_and_per_email(shop: Shop) -> None:
    def sign_up(client: httpx.Client, email: str) -> int:
        body = {"name": "Mallory", "email": email, "password": PASSWORD}
        return client.post("/auth/register", json=body).status_code

    with shop.client(shop.new_address()) as spammer:
        statuses = [sign_up(spammer, random_email()) for _ in range(REGISTER_PER_ADDRESS + 1)]
        assert statuses == [201] * REGISTER_PER_ADDRESS + [429]
    target = random_email()
    per_email = []
    for _ in range(REGISTER_PER_EMAIL + 1):
        with shop.client(shop.new_address()) as client:
            per_email.append(sign_up(client, target))
    assert per_email == [201] + [409] * (REGISTER_PER_EMAIL - 1) + [429]


def test_a_redis_outage_does_not_lift_the_limits(shop: Shop) -> None:
    """A gateway whose Redis does not answer is ready (degraded) and limits in-process."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with second_gateway(shop, REDIS_URL=dead_redis) as url:
        ready = httpx.get(f"{url}/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["redis"] == "degraded"
        with shop.client(shop.new_address(), base_url=url) as attacker:
            statuses = [
                attempt_login(attacker, random_email()).status_code
                for _ in range(LOGIN_PER_ADDRESS + 1)
            ]
        assert statuses == [401] * LOGIN_PER_ADDRESS + [429]


def test_security_events_are_logged_with_the_request_id_and_never_a_secret(shop: Shop) -> None:
    account = fresh_account(shop)
    wrong = f"wrong-{secrets.token_hex(8)}"
    failed_id = f"audit-{secrets.token_hex(8)}"
    with shop.client(shop.new_address()) as client:
        assert (
            attempt_login(client, account.email, wrong, **{"X-Request-ID": failed_id}).status_code
            == 401
        )
        events = [line.get("security_event") for line in log_lines(shop, failed_id)]
        assert "login_failed" in events, events
        for _ in range(LOGIN_PER_ADDRESS - 1):
            attempt_login(client, random_email())
        limited_id = f"audit-{secrets.token_hex(8)}"
        limited = attempt_login(client, random_email(), **{"X-Request-ID": limited_id})
        assert limited.status_code == 429
        events = [line.get("security_event") for line in log_lines(shop, limited_id)]
        assert "rate_limited" in events, events
    with shop.client(shop.new_address()) as client:
        tokens = login(client, account.email, PASSWORD)
    output = shop.output()
    for secret in (wrong, PASSWORD, tokens.access_token, tokens.refresh_token, account.email):
        assert secret not in output, "a secret or an address in clear reached the logs"
