"""METRICS_ALLOWED_NETWORKS: /metrics for the scraper's addresses only, 404 for others."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from api_gateway.config import Settings
from api_gateway.main import create_app

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def client_at(settings: Settings, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose socket peer is `peer`."""
    async with create_app(settings).running() as app:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            yield c


@pytest.mark.parametrize(
    ("allowed", "peer", "forwarded_for", "status"),
    [
        pytest.param("", "203.0.113.9", None, 200, id="no-list-everyone"),
        pytest.param("10.0.0.0/8", "10.1.2.3", None, 200, id="in-cidr"),
        pytest.param("10.0.0.0/8, 192.0.2.7", "192.0.2.7", None, 200, id="single-address"),
        pytest.param("10.0.0.0/8", "203.0.113.9", None, 404, id="outside"),
        pytest.param("fd00::/8", "fd00::5", None, 200, id="ipv6"),
        # The peer is an untrusted proxy: its X-Forwarded-For is not believed.
        pytest.param("10.0.0.0/8", "203.0.113.9", "10.1.2.3", 404, id="spoofed-forwarded-for"),
        # Through the trusted proxy: the client it names is what counts.
        pytest.param("10.0.0.0/8", "198.51.100.20", "10.1.2.3", 200, id="via-proxy-allowed"),
        pytest.param("10.0.0.0/8", "198.51.100.20", "203.0.113.9", 404, id="via-proxy-denied"),
    ],
)
async def test_metrics_answer_only_allowed_clients(
    make_settings, allowed: str, peer: str, forwarded_for: str | None, status: int
) -> None:
    settings = make_settings(metrics_allowed_networks=allowed, trusted_proxies="198.51.100.20")
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    async with client_at(settings, peer) as client:
        response = await client.get("/metrics", headers=headers)
        health = await client.get("/health", headers=headers)
    assert response.status_code == status
    if status == 404:
        assert response.headers["content-type"] == "application/problem+json"
        assert "http_requests_total" not in response.text
    else:
        assert "http_requests_total" in response.text
    assert health.status_code == 200  # only /metrics is limited


def test_a_malformed_network_is_refused_at_startup(make_settings) -> None:
    with pytest.raises(ValueError, match="not-a-network"):
        make_settings(metrics_allowed_networks="10.0.0.0/8,not-a-network")
