"""shop_common.service_client between real processes, and its retries against raw sockets."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_common.credential import CREDENTIAL_HEADER, Caller, CredentialSigner, RequestBinding
from shop_common.deadline import request_deadline
from shop_common.service_client import (
    ServiceBroken,
    ServiceClient,
    ServiceTimedOut,
    ServiceUnreachable,
)
from shop_common.testing import GatewayKeys, write_credential_keys, write_gateway_keys

pytestmark = pytest.mark.anyio
APP = Path(__file__).parent / "apps" / "two_services.py"
USER = Caller(user_id="u-7", role="USER", session_id="s-7")
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@contextmanager
def serving(*args: str) -> Iterator[str]:
    """two_services.py in its own process, on a socket bound here (no port race)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    process = subprocess.Popen(
        [sys.executable, str(APP), args[0], str(listener.fileno()), *args[1:]],
        pass_fds=[listener.fileno()],
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    listener.close()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/metrics", timeout=5)  # any answer: it serves
                break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the test service exited"
            assert time.monotonic() < deadline, "the test service did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Services:
    gateway: GatewayKeys
    order: CredentialSigner
    receiver: str
    caller: str


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    data_dir = tmp_path_factory.mktemp("two-services")
    gateway = write_gateway_keys(data_dir)
    order = write_credential_keys(data_dir, "order-service")
    with serving("receiver", str(data_dir)) as receiver:
        with serving("caller", str(data_dir), receiver) as caller:
            yield Services(gateway, order, receiver, caller)


@pytest.fixture
async def order_client(services: Services) -> AsyncIterator[ServiceClient]:
    async with ServiceClient(
        target="receiver", base_url=services.receiver, signer=services.order, timeout=10
    ) as client:
        yield client


async def test_a_call_between_services_carries_caller_request_id_and_trace(
    services: Services,
) -> None:
    async with httpx.AsyncClient(base_url=services.caller, auth=services.gateway.auth()) as client:
        response = await client.post(
            "/orders",
            json={"sku": "A-1", "quantity": 2},
            headers={
                **services.gateway.headers("caller", user_id="u-7", role="USER"),
                "x-request-id": "order-rid-1",
                "traceparent": TRACEPARENT,
            },
            timeout=30,
        )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": 200,
        "seen": {
            "body": {"sku": "A-1", "quantity": 2},
            "issuer": "order-service",
            "user_id": "u-7",
            "role": "USER",
            "request_id": "order-rid-1",
            "traceparent": TRACEPARENT,
            "method": "POST",
            "query": "",
        },
    }


async def test_the_query_is_sent_as_bound(order_client: ServiceClient) -> None:
    response = await order_client.get("/stock/A-1", params={"q": "a b&c", "n": "1"}, caller=USER)
    assert response.status == 200
    assert response.json()["query"] == "q=a+b%26c&n=1"
    assert response.headers["x-request-id"] == response.json()["request_id"]


async def test_a_service_credential_is_refused_on_a_gateway_only_route(
    order_client: ServiceClient,
) -> None:
    response = await order_client.get("/echo", caller=USER)
    assert response.status == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_gateway_credential_is_refused_on_a_route_for_order_service(
    services: Services,
) -> None:
    async with httpx.AsyncClient(base_url=services.receiver, auth=services.gateway.auth()) as c:
        refused = await c.get("/stock/A-1", headers=services.gateway.headers("receiver"))
        allowed = await c.get("/echo", headers=services.gateway.headers("receiver"))
    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert allowed.json()["issuer"] == "api-gateway"


async def test_a_credential_captured_from_a_get_authorises_nothing_else(
    services: Services,
) -> None:
    binding = RequestBinding("GET", "/stock/A-1", b"", "rid-captured")
    token = services.order.mint(audience="receiver", caller=USER, request=binding)
    headers = {CREDENTIAL_HEADER: token, "x-request-id": "rid-captured"}
    async with httpx.AsyncClient(base_url=services.receiver) as client:
        patch = await client.patch("/stock/A-1", headers=headers, json={})
        other_path = await client.get("/stock/B-2", headers=headers)
        other_id = await client.get("/stock/A-1", headers={**headers, "x-request-id": "rid-other"})
        other_service = await client.get("/stock/A-1", headers=headers)
        replayed = await client.get("/stock/A-1", headers=headers)
    assert patch.status_code == 401
    assert other_path.status_code == 401
    assert other_id.status_code == 401
    assert other_service.status_code == 200  # the request it was minted for, once
    assert replayed.status_code == 401


async def test_a_credential_for_another_service_is_refused(services: Services) -> None:
    async with ServiceClient(
        target="auth-service", base_url=services.receiver, signer=services.order
    ) as client:
        response = await client.get("/stock/A-1", caller=USER)
    assert response.status == 401


# Retries, against raw sockets that misbehave on purpose.


@dataclass
class RawServer:
    """Counts connections and requests; `behave(n)` decides what connection n does."""

    behave: Callable[[int], Awaitable[bytes | None]]
    connections: int = 0
    credentials: list[str] = field(default_factory=list)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(CREDENTIAL_HEADER.encode() + b":"):
                    self.credentials.append(line.split(b":", 1)[1].strip().decode())
            answer = await self.behave(number)
            if answer is not None:
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[..., Awaitable[RawServer]]]:
    servers: list[asyncio.Server] = []

    async def start(behave: Callable[[int], Awaitable[bytes | None]]) -> RawServer:
        raw = RawServer(behave)
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        servers.append(server)
        raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return raw

    yield start
    for server in servers:
        server.close()


def _client(url: str, *, timeout: float = 10) -> ServiceClient:
    signer = CredentialSigner(Ed25519PrivateKey.generate(), issuer="order-service")
    return ServiceClient(target="receiver", base_url=url, signer=signer, timeout=timeout)


async def _close_first_connection(number: int) -> bytes | None:
    return None if number == 1 else OK


@pytest.mark.parametrize(
    ("method", "retried"),
    [
        pytest.param("GET", True, id="GET"),
        pytest.param("PUT", True, id="PUT"),
        pytest.param("DELETE", True, id="DELETE"),
        pytest.param("POST", False, id="POST"),
        pytest.param("PATCH", False, id="PATCH"),
    ],
)
async def test_a_broken_connection_is_retried_for_idempotent_methods_only(
    raw_server: Callable[..., Awaitable[RawServer]], method: str, retried: bool
) -> None:
    server = await raw_server(_close_first_connection)
    async with _client(server.url) as client:
        if retried:
            response = await client.request(method, "/stock/A-1", json={"n": 1})
            assert response.status == 200
        else:
            with pytest.raises(ServiceBroken):
                await client.request(method, "/stock/A-1", json={"n": 1})
    assert server.connections == (2 if retried else 1)


async def test_a_timeout_is_not_retried(raw_server: Callable[..., Awaitable[RawServer]]) -> None:
    async def never_answer(_: int) -> bytes | None:
        await asyncio.sleep(3600)
        return None

    server = await raw_server(never_answer)
    async with _client(server.url, timeout=0.5) as client:
        with pytest.raises(ServiceTimedOut):
            await client.get("/stock/A-1")
    assert server.connections == 1


async def test_a_refused_connection_is_reported_as_unreachable() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    async with _client(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(ServiceUnreachable):
            await client.post("/stock", json={})


async def test_a_post_is_sent_again_when_the_first_connection_could_not_be_made(
    raw_server: Callable[..., Awaitable[RawServer]],
) -> None:
    """Nothing was sent, so even a POST is safe to retry; with a new credential."""
    server = await raw_server(_close_first_connection)
    server.connections = 1  # connection 1 below is the refused one, not the server's
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    refused_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    async with _client(refused_url) as client:
        attempts: list[str] = []
        original = client._send

        async def send_then_move(method, url, headers, body, timeout):
            attempts.append(headers[CREDENTIAL_HEADER])
            if len(attempts) == 2:  # the service is back, at its new address
                url = url.with_port(int(server.url.rsplit(":", 1)[1]))
            return await original(method, url, headers, body, timeout)

        client._send = send_then_move  # type: ignore[method-assign]
        response = await client.post("/stock", json={})
    assert response.status == 200
    assert server.credentials == [attempts[1]]
    assert len(set(attempts)) == 2


async def test_a_call_carries_a_deadline_before_the_client_stops_waiting(
    order_client: ServiceClient,
) -> None:
    """The client waits 10 s: the service commits nothing 9 s after the call was sent."""
    before = time.time()
    response = await order_client.get("/deadline", caller=USER)
    after = time.time()
    assert response.status == 200, response.body
    assert before + 9 - 0.001 <= response.json()["deadline"] <= after + 9


async def test_a_call_made_while_serving_a_request_ends_before_that_requests_deadline(
    order_client: ServiceClient,
) -> None:
    inbound = time.time() + 3
    token = request_deadline.set(inbound)
    try:
        response = await order_client.get("/deadline", caller=USER)
    finally:
        request_deadline.reset(token)
    assert response.status == 200, response.body
    assert response.json()["deadline"] < inbound


async def test_a_call_made_past_the_served_requests_deadline_times_out_at_once(
    order_client: ServiceClient,
) -> None:
    token = request_deadline.set(time.time() - 0.1)
    try:
        with pytest.raises(ServiceTimedOut, match="deadline"):
            await order_client.post("/stock", json={"sku": "A-1"}, caller=USER)
    finally:
        request_deadline.reset(token)
