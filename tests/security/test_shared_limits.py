"""Two gateway processes on one Redis (API4, API2): an attacker who spreads attempts over
replicas gets no more tries, and a revocation made through one replica reaches the
other, through Redis. Both gateways sit in front of the same auth-service and
product-service; the keys in Redis are this module's own."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis

from shop_common.testing import redis_url
from tests.security.forgery import parts
from tests.security.support import (
    EVENTUALLY_SECONDS,
    GENEROUS_LIMITS,
    Shop,
    new_user,
    random_email,
    register,
    running_shop,
    second_gateway,
    wait_for_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

LOGIN_PER_EMAIL = 3
LOGIN_PER_ADDRESS = 5


@dataclass
class Replicas:
    shop: Shop
    first: str
    second: str
    redis: redis.Redis
    revoked_key: str

    def clients(self, source: str) -> tuple[httpx.Client, httpx.Client]:
        return self.shop.client(source), self.shop.client(source, base_url=self.second)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    url = redis_url()
    run = secrets.token_hex(6)
    prefix = f"test:security:{run}"
    env = {
        **GENEROUS_LIMITS,
        "REDIS_URL": url,
        "RATE_LIMIT_KEY_PREFIX": f"{prefix}:limits",
        "REVOCATION_REDIS_KEY": f"{prefix}:revoked",
        "RATE_LIMIT_LOGIN_PER_EMAIL": f"{LOGIN_PER_EMAIL} per minute",
        "RATE_LIMIT_LOGIN_PER_ADDRESS": f"{LOGIN_PER_ADDRESS} per minute",
    }
    client = redis.Redis.from_url(url)
    try:
        with (
            running_shop(tmp_path_factory.mktemp("replicas"), **env) as shop,
            second_gateway(shop) as second,
        ):
            yield Replicas(shop, shop.gateway, second, client, f"{prefix}:revoked")
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def attempt_login(client: httpx.Client, email: str) -> int:
    body = {"email": email, "password": "wrong password"}
    return client.post("/auth/login", json=body).status_code


def test_both_gateways_use_redis(replicas: Replicas) -> None:
    for url in (replicas.first, replicas.second):
        ready = httpx.get(f"{url}/ready", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["checks"]["redis"] == "ok", ready.text


def test_login_limit_per_email_is_shared_across_two_gateways(replicas: Replicas) -> None:
    with replicas.shop.client(replicas.shop.new_address()) as setup:
        account = register(setup)
    first, second = replicas.clients(replicas.shop.new_address())
    with first, second:
        statuses = [attempt_login(first, account.email), attempt_login(second, account.email)]
        statuses.append(attempt_login(first, account.email))
        assert statuses == [401] * LOGIN_PER_EMAIL
        for gateway in (second, first):
            right = gateway.post(
                "/auth/login", json={"email": account.email, "password": account.password}
            )
            assert right.status_code == 429, right.text
            assert int(right.headers["retry-after"]) >= 1


def test_login_limit_per_address_is_shared_across_two_gateways(replicas: Replicas) -> None:
    first, second = replicas.clients(replicas.shop.new_address())
    with first, second:
        statuses = [
            attempt_login(first if n % 2 else second, random_email())
            for n in range(LOGIN_PER_ADDRESS)
        ]
        assert statuses == [401] * LOGIN_PER_ADDRESS
        assert attempt_login(first, random_email()) == 429
        assert attempt_login(second, random_email()) == 429


def test_logout_at_one_gateway_kills_the_token_at_the_other_too(
    replicas: Replicas,
) -> None:
    first, second = replicas.clients("127.0.0.1")
    with first, second:
        _, tokens = new_user(first)
        for gateway in (first, second):  # both have verified (and cached) the token
            assert gateway.get("/products?limit=1", headers=tokens.headers).status_code == 200
        logout = first.post("/auth/logout", json={"refresh_token": tokens.refresh_token})
        assert logout.status_code == 204
        for gateway in (second, first):

            def probe(gateway: httpx.Client = gateway) -> httpx.Response:
                return gateway.get("/products?limit=1", headers=tokens.headers)

            wait_for_status(probe, 401, within=EVENTUALLY_SECONDS)
    # It travelled through Redis: the session is in the shared sorted set.
    sid = parts(tokens.access_token)[1]["sid"]
    assert replicas.redis.zscore(replicas.revoked_key, sid) is not None
