"""Which upstream client should the gateway use? Measure them in the same raw ASGI shell.

    python bench/upstream_clients.py run [seconds]
    python bench/upstream_clients.py real [seconds]   # only the real gateway's rows

starts a tiny keep-alive upstream (a hand-written asyncio protocol, so it is never the
bottleneck) and, for each variant, a raw ASGI app on uvicorn (uvloop, httptools) that
proxies GET to it; wrk drives c=32 through it and the gateway process's CPU time per
request is read from /proc. Then the real gateway (`python -m api_gateway`) in front of
the same upstream: the hop alone (/health), an anonymous GET, an authenticated GET (a
cached token). Figures: docs/decisions/gateway-upstream-client.md.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from typing import Any

BODY = b'{"id":"3f1c","name":"widget","price":19.99}'
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b" % (
    len(BODY),
    BODY,
)
NO_REVOCATIONS = b'{"revoked_sessions": [], "as_of": "2030-01-01T00:00:00Z"}'
DROPPED = {b"connection", b"keep-alive", b"transfer-encoding", b"date", b"server"}
VARIANTS = ("none", "httptools-pool", "aiohttp", "httpx")


class TinyUpstream(asyncio.Protocol):
    jwks = b'{"keys": []}'

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            if head.startswith(b"GET /auth/jwks.json "):
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(self.jwks), self.jwks)
                )
            elif head.startswith(b"GET /internal/revocations"):
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b"
                    % (len(NO_REVOCATIONS), NO_REVOCATIONS)
                )
            else:
                self.transport.write(RESPONSE)


async def run_upstream(port: int) -> None:
    TinyUpstream.jwks = os.environ.get("BENCH_JWKS", "{}").encode()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(TinyUpstream, "127.0.0.1", port)
    await server.serve_forever()


def gateway_app(variant: str, upstream: str) -> Any:
    state: dict[str, Any] = {}

    async def none(_scope: Any, _receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": BODY})

    async def httptools_pool(scope: Any, _receive: Any, send: Any) -> None:
        from api_gateway.upstream import ConnectionPool

        pool = state.get("pool") or state.setdefault("pool", ConnectionPool(upstream))
        headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
        response = await pool.request(b"GET", scope["path"].encode(), headers, None, timeout=10)
        out = [(k, v) for k, v in response.headers if k.lower() not in DROPPED]
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        while chunk := await response.read(10):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        response.release()

    async def aiohttp_session(scope: Any, _receive: Any, send: Any) -> None:
        import aiohttp

        session = state.get("session") or state.setdefault(
            "session",
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=4),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            ),
        )
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k != b"host"]
        async with session.get(upstream + scope["path"], headers=headers) as response:
            out = [(k, v) for k, v in response.raw_headers if k.lower() not in DROPPED]
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    async def httpx_client(scope: Any, _receive: Any, send: Any) -> None:
        import httpx

        client = state.get("client") or state.setdefault(
            "client",
            httpx.AsyncClient(
                base_url=upstream,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
            ),
        )
        headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
        request = client.build_request("GET", scope["path"], headers=headers)
        response = await client.send(request, stream=True)
        try:
            out = [(k, v) for k, v in response.headers.raw if k.lower() not in DROPPED]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    apps = {
        "none": none,
        "httptools-pool": httptools_pool,
        "aiohttp": aiohttp_session,
        "httpx": httpx_client,
    }
    return apps[variant]


def cpu_ticks(pid: int) -> int:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wrk(url: str, seconds: int, *headers: str) -> dict[str, Any]:
    extra = [arg for header in headers for arg in ("-H", header)]
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", *extra, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(name: str) -> str:
        found = re.search(rf"{name}\s+([\d.]+\w+)", out)
        return found.group(1) if found else "?"

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = (non_2xx.group(1) + " non-2xx " if non_2xx else "") + (
        socket_errors.group(1) if socket_errors else ""
    )
    return {
        "requests": requests,
        "rps": rps,
        "p50": percentile("50%"),
        "p99": percentile("99%"),
        "errors": errors.strip() or "0",
    }


def row(name: str, pid: int, url: str, seconds: int, *headers: str) -> str:
    wrk(url, 2, *headers)  # warm up: connections, imports, caches
    before = cpu_ticks(pid)
    result = wrk(url, seconds, *headers)
    cpu_us = (cpu_ticks(pid) - before) * 1_000_000 / os.sysconf("SC_CLK_TCK") / result["requests"]
    return (
        f"| {name} | {result['rps']:,.0f} | {result['p50']} | {result['p99']} | {cpu_us:.0f} "
        f"| {result['errors']} |\n"
    )


def measure(variant: str, seconds: int, base_port: int) -> str:
    python = sys.executable
    here = os.path.abspath(__file__)
    up_port, gw_port = base_port, base_port + 1
    upstream = subprocess.Popen([python, here, "upstream", str(up_port)])
    gateway = subprocess.Popen(
        [python, here, "gateway", variant, f"http://127.0.0.1:{up_port}", str(gw_port)],
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.5)
        return row(variant, gateway.pid, f"http://127.0.0.1:{gw_port}/products/1", seconds)
    finally:
        gateway.terminate()
        upstream.terminate()
        gateway.wait()
        upstream.wait()


def measure_gateway(seconds: int, base_port: int) -> str:
    """The real gateway: JSON access log to /dev/null, credential per request."""
    import tempfile
    import uuid

    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.generate()
    x = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "kid": "bench", "alg": "EdDSA", "x": _b64(x)}
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "role": "USER",
        "sid": "s",
        "jti": "j",
        "iat": now,
        "exp": now + 600,
        "iss": "shop-auth",
        "aud": "shop-api",
    }
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "bench"})
    up_port, gw_port = base_port, base_port + 1
    env = {
        **os.environ,
        "DATA_DIR": tempfile.mkdtemp(prefix="gateway-bench-"),
        "AUTH_SERVICE_URL": f"http://127.0.0.1:{up_port}",
        "PRODUCT_SERVICE_URL": f"http://127.0.0.1:{up_port}",
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(gw_port),
        # Counted on every request, never reached: the limiter's cost without its 429s.
        "RATE_LIMIT_PER_ADDRESS": os.environ.get("RATE_LIMIT_PER_ADDRESS", "1000000000 per minute"),
    }
    env["BENCH_JWKS"] = '{"keys": [' + _json(jwk) + "]}"
    here = os.path.abspath(__file__)
    upstream = subprocess.Popen([sys.executable, here, "upstream", str(up_port)], env=env)
    gateway = subprocess.Popen(
        [sys.executable, "-m", "api_gateway", "serve"], env=env, stdout=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{gw_port}"
    try:
        wait_until_up(f"{base}/health")
        return (
            row("gateway: GET /health (no upstream)", gateway.pid, f"{base}/health", seconds)
            + row(
                "gateway: anonymous GET /products/{id}", gateway.pid, f"{base}/products/1", seconds
            )
            + row(
                "gateway: authenticated GET /auth/me",
                gateway.pid,
                f"{base}/auth/me",
                seconds,
                f"Authorization: Bearer {token}",
            )
        )
    finally:
        gateway.terminate()
        upstream.terminate()
        gateway.wait()
        upstream.wait()


def wait_until_up(url: str, seconds: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "run"
    if command == "upstream":
        import uvloop

        uvloop.run(run_upstream(int(sys.argv[2])))
    elif command == "gateway":
        import uvicorn

        uvicorn.run(
            gateway_app(sys.argv[2], sys.argv[3]),
            host="127.0.0.1",
            port=int(sys.argv[4]),
            loop="uvloop",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
        )
    elif command == "real":
        seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
        sys.stdout.write("| request | req/s | p50 | p99 | gateway CPU µs/request | errors |\n")
        sys.stdout.write("|---|---|---|---|---|---|\n")
        sys.stdout.write(measure_gateway(seconds, 18990))
    else:
        seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
        sys.stdout.write("| variant | req/s | p50 | p99 | gateway CPU µs/request | errors |\n")
        sys.stdout.write("|---|---|---|---|---|---|\n")
        for index, variant in enumerate(VARIANTS):
            sys.stdout.write(measure(variant, seconds, 18900 + 10 * index))
            sys.stdout.flush()
        sys.stdout.write(measure_gateway(seconds, 18990))


if __name__ == "__main__":
    main()
