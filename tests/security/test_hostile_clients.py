"""Hostile clients on raw sockets (issue 11; the contract's "Limits at the edge").

Slow, oversized and ambiguous requests against the real processes: desync by Upgrade,
slowloris, connection floods, huge heads, dribbled bodies, trailer fields, a log line
over 64 KiB under the launcher, a session revoked while its body dribbled, and the
request-smuggling classics. Timeouts are shortened by settings; every wait is bounded
and nothing asserts how long anything took.
"""

from __future__ import annotations

import contextlib
import re
import resource
import selectors
import signal
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.security.support import (
    GENEROUS_LIMITS,
    REVOCATION_SECONDS,
    Shop,
    create_product,
    new_user,
    running_shop,
    second_gateway,
)
from testsupport.system import start_system, stop_system

BOUND = 30.0  # generous: the machine is shared; a limit of 1-2 s fires long before
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
SMUGGLED = b"GET /health HTTP/1.1\r\nHost: shop\r\n\r\n"
FLOOD = 2000
FLOOD_LIMIT = 500


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """A system whose gateway gives heads 1 s, bodies 2 s and idle connections 1 s."""
    with running_shop(
        tmp_path_factory.mktemp("hostile"),
        **GENEROUS_LIMITS,
        HEADER_TIMEOUT_SECONDS="1",
        BODY_TIMEOUT_SECONDS="2",
        KEEPALIVE_TIMEOUT_SECONDS="1",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def patient(shop: Shop) -> Iterator[str]:
    """A second gateway in front of the same services: long deadlines, few connections,
    the test client a trusted proxy, /metrics only for 10.66.0.0/16."""
    with second_gateway(
        shop,
        HEADER_TIMEOUT_SECONDS="120",
        BODY_TIMEOUT_SECONDS="120",
        MAX_CONNECTIONS=str(FLOOD_LIMIT),
        TRUSTED_PROXIES="127.0.0.1",
        METRICS_ALLOWED_NETWORKS="10.66.0.0/16",
    ) as url:
        yield url


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _read_until_closed(sock: socket.socket, within: float = BOUND) -> tuple[bytes, bool]:
    """What the server sent, and whether it closed the connection within `within`."""
    deadline = time.monotonic() + within
    received = b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += chunk
    return received, False


def exchange(url: str, *parts: bytes, pause: float = 0.3, within: float = BOUND) -> bytes:
    """Send the parts (pausing between them, so each may arrive as its own read), then
    everything the gateway answers until it closes; a failure if it never does."""
    with socket.create_connection(_address(url), timeout=10) as sock:
        for index, part in enumerate(parts):
            if index:
                time.sleep(pause)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(part)
        received, closed = _read_until_closed(sock, within)
    assert closed, f"the connection was still open after {within} s: {received[:300]!r}"
    return received


def statuses(raw: bytes) -> list[int]:
    return [int(code) for code in STATUS_LINE.findall(raw)]


# Upgrade


@pytest.mark.parametrize(
    "upgrade",
    [
        pytest.param(b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n", id="h2c"),
        pytest.param(
            b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            id="websocket",
        ),
    ],
)
def test_an_upgrade_with_a_body_never_turns_the_body_into_a_request(
    shop: Shop, upgrade: bytes
) -> None:
    head = (
        b"POST /auth/login HTTP/1.1\r\nHost: shop\r\n"
        + upgrade
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED)
    )
    received = exchange(shop.gateway, head, SMUGGLED)
    # One answer, to the POST: the body's bytes were never answered as GET /health.
    assert statuses(received) == [400], received[:500]


def test_an_upgrade_without_a_body_is_ignored_and_the_connection_stays_http(shop: Shop) -> None:
    """What `curl --http2 http://...` sends: served as plain HTTP/1.1."""
    received = exchange(
        shop.gateway,
        b"GET /health HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
        b"GET /health HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n",
    )
    assert statuses(received) == [200, 200]
    assert b"101 Switching" not in received


def test_many_pipelined_upgrades_without_a_body_are_each_answered(shop: Shop) -> None:
    """Each ignored upgrade restarts the parser on the rest of the read: 1,200 in a row."""
    one = b"GET /health HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    last = b"GET /health HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
    received = exchange(shop.gateway, one * 1199 + last)
    assert statuses(received) == [200] * 1200


def test_connect_is_refused(shop: Shop) -> None:
    received = exchange(shop.gateway, b"CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(received) == [400]


# Heads: time and size


def test_a_head_sent_slowly_is_cut_off(shop: Shop) -> None:
    """Slowloris: a header line every half second, never the blank line."""
    with socket.create_connection(_address(shop.gateway), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: shop\r\n")
        deadline = time.monotonic() + BOUND
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                sock.sendall(b"X-Slow: %d\r\n" % int(time.monotonic() * 1000))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            received, closed = _read_until_closed(sock, within=0.5)
            if received:
                assert statuses(received) == [408], received[:300]
    assert closed, "a head dribbled for 30 s was still being read"


def test_a_silent_connection_is_closed(shop: Shop) -> None:
    with socket.create_connection(_address(shop.gateway), timeout=10) as sock:
        received, closed = _read_until_closed(sock)
    assert closed
    assert received == b""


def test_an_idle_kept_alive_connection_is_closed(shop: Shop) -> None:
    with socket.create_connection(_address(shop.gateway), timeout=10) as sock:
        sock.sendall(SMUGGLED)
        received, closed = _read_until_closed(sock)
    assert closed
    assert statuses(received) == [200]


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"X-Big: " + b"a" * (32 * 1024 * 1024) + b"\r\n", id="32 MB header"),
        pytest.param(b"X-Big: " + b"a" * (33 * 1024) + b"\r\n", id="33 KiB header"),
        pytest.param(b"".join(b"X-F%d: v\r\n" % n for n in range(100)), id="101 fields"),
        pytest.param(b"X-Many: " + b"a" * 300 + b"\r\n" + b"X-Pad: b\r\n" * 150, id="152 fields"),
    ],
)
def test_a_head_over_the_limits_gets_431(shop: Shop, head: bytes) -> None:
    received = exchange(shop.gateway, b"GET /health HTTP/1.1\r\nHost: shop\r\n" + head + b"\r\n")
    assert statuses(received) == [431]
    assert b"application/problem+json" in received
    # Every response carries an X-Request-ID, and the body names the same one.
    request_id = re.search(rb"(?im)^x-request-id: ([0-9a-f]{32})\r$", received)
    assert request_id is not None and b'"request_id":"%s"' % request_id[1] in received


def test_a_request_line_over_the_limit_gets_431(shop: Shop) -> None:
    received = exchange(shop.gateway, b"GET /" + b"a" * 40_000 + b" HTTP/1.1\r\nHost: shop\r\n\r\n")
    assert statuses(received) == [431]


def test_a_head_just_within_the_limits_is_served(shop: Shop) -> None:
    fields = b"".join(b"X-F%d: %s\r\n" % (n, b"v" * 250) for n in range(98))  # + Host, Connection
    received = exchange(
        shop.gateway,
        b"GET /health HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n" + fields + b"\r\n",
    )
    assert statuses(received) == [200]


# Many connections


def _raise_own_descriptor_limit(needed: int) -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.fail(f"this test needs {needed} descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return soft, hard


def test_a_flood_of_idle_connections_leaves_room_for_a_new_client(patient: str) -> None:
    before = _raise_own_descriptor_limit(FLOOD + 1024)
    flood: list[socket.socket] = []
    try:
        for _ in range(FLOOD):
            sock = socket.create_connection(_address(patient), timeout=10)
            flood.append(sock)
            with contextlib.suppress(OSError):
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: shop\r\n")  # never finished
        with httpx.Client(timeout=15) as client:
            assert client.get(f"{patient}/health").status_code == 200
        # The gateway holds at most MAX_CONNECTIONS: the oldest of the others were closed.
        assert _closed_by_server(flood) >= FLOOD - FLOOD_LIMIT
    finally:
        for sock in flood:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def _closed_by_server(sockets: list[socket.socket], within: float = BOUND) -> int:
    """How many of these the server closed (or answered: 503) within `within`."""
    closed = 0
    wanted = len(sockets) - FLOOD_LIMIT
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + within
        while closed < wanted and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(timeout=min(left, 1.0)):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                try:
                    data = ready.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionResetError:
                    data = b""
                if not data or statuses(data) in ([503], [408]):
                    closed += 1
                    selector.unregister(ready)
    return closed


# Bodies


def _wait_readable(sock: socket.socket, seconds: float) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout=seconds))


def test_a_dribbled_body_gets_408_and_is_not_applied(shop: Shop) -> None:
    with shop.client() as client:
        _, owner = new_user(client)
        product = create_product(client, owner)
        body = b'{"name": "dribbled-%s"}' % product["id"][:8].encode()
        with socket.create_connection(_address(shop.gateway), timeout=10) as sock:
            sock.sendall(
                b"PATCH /products/%s HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer %s\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % (product["id"].encode(), owner.access_token.encode(), len(body))
            )
            for byte in body:  # one byte a second: the whole body would take ~30 s
                if _wait_readable(sock, 1.0):
                    break
                sock.sendall(bytes([byte]))
            received, closed = _read_until_closed(sock)
        assert statuses(received) == [408], received[:300]
        assert closed
        after = client.get(f"/products/{product['id']}")
        assert after.json()["name"] == product["name"]


def test_a_session_revoked_while_its_body_dribbles_is_refused(shop: Shop, patient: str) -> None:
    with shop.client() as client:
        _, owner = new_user(client)
        product = create_product(client, owner)
        body = b'{"name": "after-logout"}'
        with socket.create_connection(_address(patient), timeout=10) as sock:
            sock.sendall(
                b"PATCH /products/%s HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer %s\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (product["id"].encode(), owner.access_token.encode(), len(body), body[:5])
            )
            logout = client.post("/auth/logout", json={"refresh_token": owner.refresh_token})
            assert logout.status_code == 204
            _wait_until_refused(patient, owner.access_token)
            sock.sendall(body[5:])
            received, _ = _read_until_closed(sock, within=15)
        assert statuses(received)[:1] == [401], received[:300]
        assert client.get(f"/products/{product['id']}").json()["name"] == product["name"]


def _wait_until_refused(gateway: str, token: str) -> None:
    """Until the gateway itself knows the session is revoked: /auth/users is answered by
    the gateway alone for a USER (403 by role), 401 once the token is refused there."""
    deadline = time.monotonic() + 4 * REVOCATION_SECONDS
    with httpx.Client(timeout=15) as client:
        while time.monotonic() < deadline:
            users = client.get(
                f"{gateway}/auth/users", headers={"Authorization": f"Bearer {token}"}
            )
            if users.status_code == 401:
                return
            time.sleep(0.2)
    pytest.fail("the logout never reached the second gateway")


def test_trailer_fields_are_never_read_as_headers(shop: Shop) -> None:
    with shop.client() as client:
        _, owner = new_user(client)
    body = b'{"name": "from-a-trailer", "price": 3}'
    received = exchange(
        shop.gateway,
        b"POST /products HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n" % (len(body), body)
        + b"Authorization: Bearer %s\r\n\r\n" % owner.access_token.encode(),
    )
    assert statuses(received) == [401]


def test_a_trailer_x_forwarded_for_is_never_believed(patient: str) -> None:
    """The client is a trusted proxy here: its X-Forwarded-For header is believed, and
    /metrics opens to 10.66.0.0/16; the same field as a trailer changes nothing."""
    as_header = exchange(
        patient,
        b"GET /metrics HTTP/1.1\r\nHost: shop\r\nX-Forwarded-For: 10.66.0.1\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert statuses(as_header) == [200]
    as_trailer = exchange(
        patient,
        b"GET /metrics HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n0\r\nX-Forwarded-For: 10.66.0.1\r\n\r\n",
    )
    assert statuses(as_trailer) == [404]


# Framing: the smuggling classics, each followed by a request that must not be answered


def _framed(fields: bytes, body: bytes) -> bytes:
    return b"POST /auth/login HTTP/1.1\r\nHost: shop\r\n" + fields + b"\r\n" + body


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(
            _framed(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\nG"),
            id="CL.TE",
        ),
        pytest.param(
            _framed(
                b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                b"8\r\nSMUGGLED\r\n0\r\n\r\n",
            ),
            id="TE.CL",
        ),
        pytest.param(_framed(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"), id="TE xchunked"),
        pytest.param(
            _framed(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"), id="TE space colon"
        ),
        pytest.param(
            _framed(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", b"0\r\n\r\n"),
            id="TE twice",
        ),
        pytest.param(
            _framed(b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n"), id="TE list"
        ),
        pytest.param(
            _framed(b"Transfer-Encoding:\x0bchunked\r\n", b"0\r\n\r\n"), id="TE vertical tab"
        ),
        pytest.param(
            _framed(b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n").replace(
                b"Transfer-Encoding", b"Transfer-Encoding\r\n "
            ),
            id="TE obs-fold name",
        ),
        pytest.param(_framed(b"Content-Length: 2\r\nContent-Length: 40\r\n", b"{}"), id="CL twice"),
        pytest.param(_framed(b"Content-Length: 2, 2\r\n", b"{}"), id="CL list"),
        pytest.param(_framed(b"Content-Length: +2\r\n", b"{}"), id="CL sign"),
        pytest.param(_framed(b"Content-Length: 0x2\r\n", b"{}"), id="CL hex"),
        pytest.param(
            _framed(b"Transfer-Encoding: chunked\r\n", b"-2\r\n{}\r\n0\r\n\r\n"),
            id="chunk negative",
        ),
        pytest.param(
            _framed(b"Transfer-Encoding: chunked\r\n", b"0x2\r\n{}\r\n0\r\n\r\n"), id="chunk 0x"
        ),
        pytest.param(
            _framed(b"Transfer-Encoding: chunked\r\n", b"1" * 20 + b"\r\n{}\r\n0\r\n\r\n"),
            id="chunk size overflow",
        ),
        pytest.param(
            _framed(b"Transfer-Encoding: chunked\r\n", b"2 \r\n{}\r\n0\r\n\r\n"),
            id="chunk size space",
        ),
        pytest.param(
            _framed(b"Transfer-Encoding: chunked\r\n", b"2\r\n{}XX0\r\n\r\n"),
            id="chunk without CRLF",
        ),
        pytest.param(b"GET /health HTTP/1.1\r\nHost: shop\r\nX-A: b\r\n c\r\n\r\n", id="obs-fold"),
        pytest.param(b"GET /health HTTP/1.1\nHost: shop\n\n", id="bare LF"),
        pytest.param(b"GET /health HTTP/1.1\r\nHost: shop\nX-A: b\r\n\r\n", id="bare LF in head"),
        pytest.param(b"GET /health HTTP/1.1\r\n\r\n", id="no Host"),
        pytest.param(b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", id="Host twice"),
        pytest.param(b"GET /health HTTP/1.1\r\nHost: shop\r\nX\x00: y\r\n\r\n", id="NUL in name"),
    ],
)
def test_ambiguous_framing_is_refused_and_nothing_after_it_is_read(
    shop: Shop, request_bytes: bytes
) -> None:
    received = exchange(shop.gateway, request_bytes + SMUGGLED, pause=0)
    assert statuses(received) == [400], received[:500]


def test_http_1_0_without_host_is_served(shop: Shop) -> None:
    received = exchange(shop.gateway, b"GET /health HTTP/1.0\r\n\r\n")
    assert statuses(received) == [200]


def test_content_length_with_trailing_whitespace_is_its_number(shop: Shop) -> None:
    received = exchange(
        shop.gateway,
        b"POST /auth/login HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2 \t\r\nConnection: close\r\n\r\n{}",
    )
    assert statuses(received) == [422], received[:500]


def test_a_tab_before_chunked_is_plain_whitespace(shop: Shop) -> None:
    received = exchange(
        shop.gateway,
        b"POST /auth/login HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding:\tchunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    )
    assert statuses(received) == [422], received[:500]


# The launcher


def test_a_log_line_over_64_kib_neither_stops_the_relay_nor_blocks_the_gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    system = start_system(tmp_path_factory.mktemp("long-line"), MAX_HEADER_BYTES="262144")
    try:
        long_path = "/" + "a" * 65_000
        with httpx.Client(base_url=system.gateway, timeout=15) as client:
            assert client.get(long_path).status_code == 404
            # Enough access-log lines to fill a pipe nobody drains (64 KiB) many times.
            for _ in range(1500):
                assert client.get("/health").status_code == 200
        system.wait_for_line("a" * 65_000)
    finally:
        code = stop_system(system, signal.SIGINT)
    assert code == 0


# Answers given before the body ended


def test_an_answer_sent_before_the_body_ended_reaches_the_client(shop: Shop) -> None:
    """An anonymous PUT is refused from its head alone; closing with the body still
    arriving would reset the connection, and the client would see the reset, not the 401."""
    body = b'{"name": "' + b"x" * 600_000 + b'", "price": 1}'
    path = "/products/00000000-0000-4000-8000-000000000000"
    with httpx.Client(base_url=shop.gateway, timeout=BOUND) as client:
        for _ in range(5):
            response = client.put(path, content=body, headers={"content-type": "application/json"})
            assert response.status_code == 401
            assert response.headers["connection"] == "close"
