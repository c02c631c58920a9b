from __future__ import annotations

import pytest
from pydantic import ValidationError

from api_gateway.config import Settings
from api_gateway.ratelimit import Rate


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GATEWAY_HOST",
        "GATEWAY_PORT",
        "AUTH_HOST",
        "AUTH_PORT",
        "PRODUCT_HOST",
        "PRODUCT_PORT",
        "AUTH_SERVICE_URL",
        "PRODUCT_SERVICE_URL",
        "CORS_ORIGINS",
        "TRUSTED_PROXIES",
        "UPSTREAM_TIMEOUT",
        "RATE_LIMIT_PER_ADDRESS",
        "RATE_LIMIT_LOGIN_PER_EMAIL",
        "REDIS_URL",
        "REVOCATION_REDIS_KEY",
        "RATE_LIMIT_KEY_PREFIX",
        "JWKS_MAX_AGE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_follow_the_contract() -> None:
    settings = Settings()
    assert (settings.gateway_host, settings.gateway_port) == ("0.0.0.0", 5000)
    assert settings.upstream_urls("auth-service") == ("http://127.0.0.1:5001",)
    assert settings.upstream_urls("product-service") == ("http://127.0.0.1:5002",)
    assert settings.upstream_timeout == 10
    assert settings.cors_origins == ()
    assert settings.trusted_networks == ()
    assert settings.max_body_bytes == 1024 * 1024
    assert (settings.jwt_issuer, settings.jwt_audience) == ("shop-auth", "shop-api")
    assert settings.rate_limit_login_per_email == Rate(10, 900)
    assert settings.rate_limit_login_per_address == Rate(30, 60)
    assert settings.rate_limit_register_per_email == Rate(5, 3600)
    assert settings.rate_limit_register_per_address == Rate(20, 3600)
    assert settings.rate_limit_per_address == Rate(1200, 60)
    assert settings.redis_url is None
    assert settings.revocation_redis_key == "shop:revoked-sessions"  # as auth-service's
    assert settings.rate_limit_key_prefix == "shop:ratelimit"
    assert settings.revocation_poll_seconds == 1.0
    assert settings.access_token_ttl_seconds == 900
    assert settings.jwks_max_age == 60


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("redis://cache:6379/0", "redis://cache:6379/0", id="redis"),
        pytest.param("rediss://cache:6380/1", "rediss://cache:6380/1", id="tls"),
        pytest.param("unix:///run/redis.sock", "unix:///run/redis.sock", id="socket"),
        pytest.param("", None, id="empty-is-unset"),
    ],
)
def test_redis_url(monkeypatch: pytest.MonkeyPatch, value: str, expected: str | None) -> None:
    monkeypatch.setenv("REDIS_URL", value)
    assert Settings().redis_url == expected


def test_a_service_port_alone_moves_the_gateways_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_PORT", "6001")
    monkeypatch.setenv("PRODUCT_HOST", "0.0.0.0")
    monkeypatch.setenv("PRODUCT_PORT", "6002")
    settings = Settings()
    assert settings.upstream_urls("auth-service") == ("http://127.0.0.1:6001",)
    assert settings.upstream_urls("product-service") == ("http://127.0.0.1:6002",)


def test_an_ipv6_service_host_is_bracketed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_HOST", "::")
    assert Settings().upstream_urls("auth-service") == ("http://[::1]:5001",)


def test_upstream_urls_take_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODUCT_SERVICE_URL", "http://product-a:5002, http://product-b:5002/")
    monkeypatch.setenv("AUTH_PORT", "6001")  # an explicit URL wins over host and port
    monkeypatch.setenv("AUTH_SERVICE_URL", "https://auth.internal")
    settings = Settings()
    assert settings.upstream_urls("product-service") == (
        "http://product-a:5002",
        "http://product-b:5002",
    )
    assert settings.upstream_urls("auth-service") == ("https://auth.internal",)


def test_lists_and_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://shop.example, http://localhost:3000")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    monkeypatch.setenv("RATE_LIMIT_PER_ADDRESS", "off")
    monkeypatch.setenv("RATE_LIMIT_LOGIN_PER_EMAIL", "3 per 2 hours")
    monkeypatch.setenv("UPSTREAM_TIMEOUT", "2.5")
    settings = Settings()
    assert settings.cors_origins == ("https://shop.example", "http://localhost:3000")
    assert [str(n) for n in settings.trusted_networks] == ["10.0.0.0/8", "127.0.0.1/32"]
    assert settings.rate_limit_per_address is None
    assert settings.rate_limit_login_per_email == Rate(3, 7200)
    assert settings.upstream_timeout == 2.5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("AUTH_SERVICE_URL", "ftp://auth", id="not-http"),
        pytest.param("PRODUCT_SERVICE_URL", "http://", id="no-host"),
        pytest.param("PRODUCT_SERVICE_URL", "http://p:5002/?x=1", id="query"),
        pytest.param("AUTH_SERVICE_URL", "http://a:notaport", id="bad-port"),
        pytest.param("TRUSTED_PROXIES", "10.0.0.0/33", id="bad-network"),
        pytest.param("CORS_ORIGINS", "shop.example", id="origin-without-scheme"),
        pytest.param("RATE_LIMIT_LOGIN_PER_ADDRESS", "lots", id="bad-rate"),
        pytest.param("UPSTREAM_TIMEOUT", "0", id="zero-timeout"),
        pytest.param("GATEWAY_PORT", "70000", id="port-out-of-range"),
        pytest.param("REDIS_URL", "http://cache:6379", id="redis-url-not-redis"),
        pytest.param("REVOCATION_POLL_SECONDS", "5", id="revocation-poll-too-slow"),
    ],
)
def test_invalid_settings_stop_the_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings()
