"""One request on a client connection, as ASGI sees it: `receive` and `send`.

The body parts the parser hands over wait here until the application asks for them. A
body that stops arriving (or cannot be parsed) is told to the application as a Problem
raised from `receive`, so the gateway answers it like any other (408, 400) and nothing of
it is forwarded as a finished request.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any

from shop_common.problems import Problem

HIGH_WATER = 64 * 1024  # stop reading the client while this much body waits unread
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_STATUS_LINES = {
    status: b"HTTP/1.1 %d %s\r\n" % (status, http.HTTPStatus(status).phrase.encode())
    for status in range(100, 600)
    if status in http.HTTPStatus._value2member_map_
}
Message = dict[str, Any]


class ResponseMalformed(RuntimeError):
    """The application sent something that is not a valid response: the connection closes."""


class EdgeRequest:
    __slots__ = (
        "_body",
        "_connection",
        "buffered",
        "_length",
        "_waiter",
        "chunked",
        "disconnected",
        "expect_continue",
        "failure",
        "head_only",
        "keep_alive",
        "more_body",
        "response_complete",
        "response_started",
        "scope",
    )

    def __init__(
        self,
        connection: Any,  # the EdgeProtocol (typed loosely: the two modules meet here only)
        scope: dict[str, Any],
        *,
        keep_alive: bool,
        expect_continue: bool,
    ) -> None:
        self._connection = connection
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.head_only = scope["method"] == "HEAD"
        self._body: list[bytes] = []
        self.buffered = 0  # body bytes received and not yet taken by the application
        self._waiter: asyncio.Future[None] | None = None
        self._length: int | None = None  # the response's Content-Length, counted down
        self.more_body = True  # the request's body has not ended yet
        self.disconnected = False
        self.failure: Problem | None = None  # raised from receive: the body will not come
        self.response_started = False
        self.response_complete = False
        self.chunked = False

    # fed by the connection
    def add_body(self, chunk: bytes) -> None:
        self._body.append(chunk)
        self.buffered += len(chunk)
        self._wake()

    def body_complete(self) -> None:
        self.more_body = False
        self._wake()

    def fail(self, problem: Problem | None) -> None:
        """The body will not arrive: a Problem for the application, or None if the client
        is gone."""
        if problem is None:
            self.disconnected = True
        elif self.failure is None:
            self.failure = problem
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ASGI
    async def receive(self) -> Message:
        connection = self._connection
        if self.expect_continue:
            self.expect_continue = False
            if not self.response_started and self.more_body:
                connection.write(CONTINUE)
        while not self._body and self.more_body and not self.disconnected:
            if self.failure is not None:
                raise self.failure
            if self.response_complete:
                break
            connection.resume_reading()
            self._waiter = connection.loop.create_future()
            await self._waiter
            self._waiter = None
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        parts = self._body
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        self.buffered = 0
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    async def send(self, message: Message) -> None:
        connection = self._connection
        if connection.write_paused and not self.disconnected:
            await connection.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise ResponseMalformed(f"expected http.response.start, got {message['type']}")
            self._start(message["status"], message.get("headers", ()))
        elif not self.response_complete:
            if message["type"] != "http.response.body":
                raise ResponseMalformed(f"expected http.response.body, got {message['type']}")
            self._body_part(message.get("body", b""), message.get("more_body", False))
        else:
            raise ResponseMalformed(f"{message['type']} after the response was complete")

    def _start(self, status: int, headers: Any) -> None:
        self.response_started = True
        self.expect_continue = False
        parts = [_STATUS_LINES[status], self._connection.default_headers]
        lines = 2  # the status line and the blank line
        length = None
        for name, value in headers:
            if name == b"content-length":
                length = int(value)
                continue  # written once, below
            if name == b"transfer-encoding":
                continue  # framing is ours
            if name == b"connection" and b"close" in value.lower():
                self.keep_alive = False
                continue
            parts += (name, b": ", value, b"\r\n")
            lines += 1
        if self.more_body:
            self.keep_alive = False  # the rest of the body is dropped, then the connection closes
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
            lines += 1
        if length is not None:
            parts.append(b"content-length: %d\r\n" % length)
            lines += 1
            self._length = 0 if self.head_only else length
        elif not self.head_only and status not in (204, 304):
            self.chunked = True
            parts.append(b"transfer-encoding: chunked\r\n")
            lines += 1
        else:
            self._length = 0
        parts.append(b"\r\n")
        head = b"".join(parts)
        # One CR and one LF per line: an application's header value cannot add a line.
        lines += self._connection.default_header_lines
        if head.count(b"\n") != lines or head.count(b"\r") != lines:
            raise ResponseMalformed("a response header contains CR or LF")
        self._connection.write(head)

    def _body_part(self, body: bytes, more: bool) -> None:
        connection = self._connection
        if self.chunked:
            if body:
                connection.write(b"%x\r\n%s\r\n" % (len(body), body))
            if not more:
                connection.write(b"0\r\n\r\n")
        elif not self.head_only:
            assert self._length is not None
            self._length -= len(body)
            if self._length < 0:
                raise ResponseMalformed("response body longer than its Content-Length")
            if body:
                connection.write(body)
        if not more:
            if self._length:
                raise ResponseMalformed("response body shorter than its Content-Length")
            self.response_complete = True
            self._wake()
            connection.response_done(self)
