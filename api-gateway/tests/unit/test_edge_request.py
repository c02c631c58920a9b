"""The response side of the edge protocol: framing per status and method, and no header
value can add a line."""

from __future__ import annotations

from typing import Any

import pytest

from api_gateway.edge_request import EdgeRequest, ResponseMalformed


class FakeConnection:
    write_paused = False
    default_headers = b"date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
    default_header_lines = 1

    def __init__(self) -> None:
        self.written = b""
        self.done: list[EdgeRequest] = []

    def write(self, data: bytes) -> None:
        self.written += data

    def response_done(self, request: EdgeRequest) -> None:
        self.done.append(request)


def _request(method: str = "GET") -> tuple[EdgeRequest, FakeConnection]:
    connection = FakeConnection()
    scope: dict[str, Any] = {"method": method}
    return EdgeRequest(connection, scope, keep_alive=True, expect_continue=False), connection


async def _respond(request: EdgeRequest, status: int, headers: list[Any], body: bytes) -> None:
    await request.send({"type": "http.response.start", "status": status, "headers": headers})
    await request.send({"type": "http.response.body", "body": body})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "status", "headers", "body", "expected"),
    [
        pytest.param("POST", 204, [], b"", b"\r\n\r\n", id="204 without length"),
        pytest.param(
            "GET",
            200,
            [(b"content-length", b"2")],
            b"{}",
            b"content-length: 2\r\n\r\n{}",
            id="length",
        ),
        pytest.param("GET", 200, [], b"{}", b"chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", id="chunked"),
        pytest.param(
            "HEAD", 200, [(b"content-length", b"2")], b"", b"content-length: 2\r\n\r\n", id="HEAD"
        ),
    ],
)
async def test_a_response_is_framed_by_its_length_or_chunked(
    method: str, status: int, headers: list[Any], body: bytes, expected: bytes
) -> None:
    request, connection = _request(method)
    await _respond(request, status, headers, body)
    assert connection.written.startswith(b"HTTP/1.1 %d " % status)
    assert connection.written.endswith(expected)
    assert connection.done == [request]


@pytest.mark.anyio
@pytest.mark.parametrize("value", [b"a\r\nset-cookie: x=1", b"a\nb", b"a\rb"])
async def test_a_header_value_cannot_add_a_line(value: bytes) -> None:
    request, connection = _request()
    with pytest.raises(ResponseMalformed):
        await _respond(request, 200, [(b"x-a", value), (b"content-length", b"0")], b"")
    assert connection.written == b""
