"""Which HTTP library under shop_common.service_client? CPU per call, measured.

    .venv/bin/python shop-common/bench/service_client_cost.py [calls] [concurrency]

Starts a tiny keep-alive HTTP server in another process (a hand-written asyncio protocol,
never the bottleneck) and makes `calls` GETs from this process with `concurrency` in
flight: through ServiceClient (aiohttp, credential minted per call), and through httpx
and aiohttp with the same per-call credential. Figures: process CPU time per call (what
the calling service pays) and wall-clock calls per second (shared machine: indicative).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_common.credential import CREDENTIAL_HEADER, Caller, CredentialSigner, RequestBinding
from shop_common.service_client import ServiceClient

SERVER = """
import asyncio, socket, sys
BODY = b'{"sku":"A-1","stock":7}'
HEAD = b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\n"
RESPONSE = HEAD + b"content-length: %d\\r\\n\\r\\n%b" % (len(BODY), BODY)
class Tiny(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def data_received(self, data):
        self.buffer += data
        while (end := self.buffer.find(b"\\r\\n\\r\\n")) >= 0:
            self.buffer = self.buffer[end + 4:]
            self.transport.write(RESPONSE)
async def main():
    listener = socket.socket(fileno=int(sys.argv[1]))
    server = await asyncio.get_running_loop().create_server(Tiny, sock=listener)
    await server.serve_forever()
asyncio.run(main())
"""
CALLER = Caller(user_id="u-1", role="USER")
SIGNER = CredentialSigner(Ed25519PrivateKey.generate(), issuer="order-service")
PATH = "/stock/A-1"


def _headers() -> dict[str, str]:
    request_id = uuid.uuid4().hex
    binding = RequestBinding("GET", PATH, b"", request_id)
    token = SIGNER.mint(audience="product-service", caller=CALLER, request=binding)
    return {"x-request-id": request_id, CREDENTIAL_HEADER: token}


async def _measure(
    label: str, call: Callable[[], Awaitable[None]], calls: int, concurrency: int
) -> None:
    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    await asyncio.gather(*(worker(20) for _ in range(concurrency)))  # warm-up, pools filled
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = calls // concurrency * concurrency
    sys.stdout.write(
        f"{label:<44} {cpu / done * 1e6:8.0f} µs CPU/call {done / wall:9.0f} calls/s\n"
    )


async def run(url: str, calls: int, concurrency: int) -> None:
    async with ServiceClient(target="product-service", base_url=url, signer=SIGNER) as client:

        async def ours() -> None:
            assert (await client.get(PATH, caller=CALLER)).status == 200

        await _measure("ServiceClient (aiohttp), mint per call", ours, calls, concurrency)

    async with aiohttp.ClientSession() as session:

        async def bare_aiohttp() -> None:
            async with session.get(url + PATH, headers=_headers()) as response:
                await response.read()

        await _measure("aiohttp ClientSession, mint per call", bare_aiohttp, calls, concurrency)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits) as http:

        async def with_httpx() -> None:
            response = await http.get(PATH, headers=_headers())
            assert response.status_code == 200

        await _measure("httpx AsyncClient, mint per call", with_httpx, calls, concurrency)

    async def mint_only() -> None:
        _headers()

    await _measure("(the credential alone: mint)", mint_only, calls, concurrency)


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(listener.fileno())], pass_fds=[listener.fileno()]
    )
    listener.close()
    try:
        sys.stdout.write(f"{calls:,} GETs, {concurrency} in flight\n")
        asyncio.run(run(url, calls, concurrency))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
