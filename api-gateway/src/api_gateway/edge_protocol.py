"""The gateway's HTTP/1.1 connection protocol (httptools), under uvicorn's accept loop.

uvicorn's own protocols leave every edge limit to a proxy in front: no header size or
count limit, no deadline for a head or a body, trailer fields appended to the request's
headers, an `Upgrade` with a body whose bytes are then parsed as the next request, and
a concurrency cap checked only once a head has arrived (so idle sockets are never
refused). This protocol holds the contract's "Limits at the edge" itself
(docs/decisions/gateway-edge-server.md):
- a head over max_header_bytes or max_header_fields gets 431; a head not complete
  within header_timeout of the connection's opening (or the previous response) is
  closed (408 when part of it came); an idle connection closes after keepalive_timeout;
- a body not complete within body_timeout is a 408 the application answers (raised from
  `receive`); a response sent before the body ended closes the connection;
- `Upgrade` is ignored on a request without a body and refused (400) with one, CONNECT
  is refused; a second Host, or none on HTTP/1.1, is 400; trailer fields are dropped;
- past max_connections the oldest idle connection gives way, or the newcomer gets 503.
llhttp (strict) refuses the framing tricks: duplicate or malformed Content-Length, CL
with TE, TE other than a final chunked, obs-fold, bare LF, bad chunk sizes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from typing import Any, Literal
from urllib.parse import unquote

import httptools

from api_gateway.edge import Connections, EdgeLimits, edge_response
from api_gateway.edge_request import HIGH_WATER, EdgeRequest
from api_gateway.exceptions import MalformedRequest, RequestTimeout

logger = logging.getLogger(__name__)
ASGI_INFO = {"version": "3.0", "spec_version": "2.3"}
Phase = Literal["idle", "head", "body"]
# uvicorn's list of default headers, its formatted text, its length (one server a process)
_DEFAULT_HEADERS: list[Any] = [None, b"", 0]
LINGER_SECONDS = 2.0  # after a refusal, input is read and dropped this long (nginx: 5 s)


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class EdgeProtocol(asyncio.Protocol):
    """One client connection. uvicorn creates it with (config, server_state, app_state);
    `protocol_factory` binds the limits and the register of connections."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: EdgeLimits,
        connections: Connections,
    ) -> None:
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self._app_state = app_state
        self._limits = limits
        self._register = connections
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._client: tuple[str, int] | None = None
        self._server: tuple[str, int] | None = None
        self._counted = False
        self._closed = False
        self._parser_failed = False
        self._reading_paused = False
        self.write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head_deadline = 0.0
        self._phase: Phase = "idle"
        self._request: EdgeRequest | None = None  # the one the application works on
        self._parsing: EdgeRequest | None = None  # the one whose body is being read
        self._queue: deque[EdgeRequest] = deque()  # pipelined, waiting their turn
        self._reset_head()

    def _reset_head(self) -> None:
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0  # request line and fields as parsed
        self._head_raw = 0  # bytes of reads that all belonged to the head
        self._hosts = 0
        self._has_body = False
        self._expect_continue = False

    # asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is only alike
        if not self._register.admit():
            logger.warning("connection refused: %d open", self._register.open)
            transport.write(  # type: ignore[attr-defined]
                edge_response(503, "Too many connections; try again.", retry_after=1)
            )
            transport.close()
            self._closed = True
            return
        self._register.open += 1
        self._counted = True
        self.server_state.connections.add(self)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._client = (str(peer[0]), int(peer[1]))
        local = transport.get_extra_info("sockname")
        if isinstance(local, tuple):
            self._server = (str(local[0]), int(local[1]))
        self._become_idle(self._limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        self._closed = True
        self._forget()
        self._cancel_timer()
        for request in (self._request, self._parsing, *self._queue):
            if request is not None:
                request.fail(None)
        self._queue.clear()
        self._wake_drain()

    def eof_received(self) -> bool | None:
        return None  # the client stopped sending: close once the transport is done

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain()

    def data_received(self, data: bytes) -> None:
        while data:
            data = self._feed(data)

    def _feed(self, data: bytes) -> bytes:
        """Parse one read; what is left of it after an ignored upgrade, else b""."""
        if self._parser_failed or self._closed:
            return b""
        was_in_head = self._phase == "head"
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # Only a request without a body gets here (on_headers_complete refuses the
            # rest): the upgrade is ignored and what follows is HTTP/1.1 again.
            return data[upgrade.args[0] :]
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self._refuse(refused.status, refused.detail)
            else:
                logger.error("request parsing failed", exc_info=refused)
                self._refuse(400, "The request could not be read.")
            return b""
        except httptools.HttpParserError as exc:
            self._refuse(400, f"Malformed HTTP request: {exc}.")
            return b""
        phase = self._phase
        if phase == "head" and was_in_head:
            self._head_raw += len(data)  # every byte of this read was head
            if self._head_raw > self._limits.max_header_bytes:
                self._refuse(431, "The request's header fields are too large.")
        elif phase == "body" and self._timer is None:
            self._timer = self.loop.call_later(self._limits.body_timeout, self._on_timer)
        return b""

    # httptools
    def on_message_begin(self) -> None:
        self._phase = "head"
        self._reset_head()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > self._limits.max_header_bytes:
            raise _Refused(431, "The request line is too long.")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._phase != "head":
            return  # a trailer field of a chunked body: dropped, never a header
        name = name.lower()
        headers = self._headers
        headers.append((name, value))
        self._head_size += len(name) + len(value) + 4
        limits = self._limits
        if self._head_size > limits.max_header_bytes or len(headers) > limits.max_header_fields:
            raise _Refused(431, "The request's header fields are too large or too many.")
        if name == b"host":
            self._hosts += 1
        elif name == b"content-length":
            self._has_body = bool(value.strip(b" \t").lstrip(b"0"))
        elif name == b"transfer-encoding":
            self._has_body = True
        elif name == b"expect" and value.lower() == b"100-continue":
            self._expect_continue = True

    def on_headers_complete(self) -> None:
        parser = self._parser
        method = parser.get_method().decode("ascii")
        version = parser.get_http_version()
        if self._hosts > 1 or (self._hosts == 0 and version == "1.1"):
            raise _Refused(400, "An HTTP/1.1 request needs exactly one Host header.")
        if parser.should_upgrade() and (method == "CONNECT" or self._has_body):
            raise _Refused(400, "Protocol upgrades are not offered.")
        try:
            url = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            raise _Refused(400, "The request target is not a valid URL.") from None
        raw_path = url.path or b"/"
        path = raw_path.decode("latin-1")
        scope = {
            "type": "http",
            "asgi": ASGI_INFO,
            "http_version": version,
            "server": self._server,
            "client": self._client,
            "scheme": "http",
            "root_path": "",
            "headers": self._headers,
            "state": self._app_state.copy(),
            "method": method,
            "path": unquote(path, "latin-1") if "%" in path else path,
            "raw_path": raw_path,
            "query_string": url.query or b"",
        }
        request = EdgeRequest(
            self,
            scope,
            keep_alive=version != "1.0" and parser.should_keep_alive(),
            expect_continue=self._expect_continue,
        )
        self._phase = "body"
        self._parsing = request
        self._cancel_timer()
        self._register.idle.pop(self, None)
        if self._request is None:
            self._start(request)
        else:  # pipelined: its turn comes when the response before it is complete
            self._queue.append(request)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        request = self._parsing
        if request is None or request.response_complete or request.failure is not None:
            return
        request.add_body(body)
        if request.buffered > HIGH_WATER:
            self.pause_reading()

    def on_message_complete(self) -> None:
        self._cancel_timer()
        self._phase = "idle"
        request, self._parsing = self._parsing, None
        if request is not None:
            request.body_complete()

    # the application's side
    def _start(self, request: EdgeRequest) -> None:
        self._request = request
        task = self.loop.create_task(self._run(request))
        tasks = self.server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run(self, request: EdgeRequest) -> None:
        try:
            await self.app(request.scope, request.receive, request.send)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                logger.error("exception in the gateway application", exc_info=exc)
            self._abort(request)
        else:
            if not request.response_complete and not request.disconnected:
                logger.error("the gateway application returned without a complete response")
                self._abort(request)

    def _abort(self, request: EdgeRequest) -> None:
        if not request.response_started and not request.disconnected:
            self.write(edge_response(500, "An unexpected error occurred."))
        self.close()

    def response_done(self, request: EdgeRequest) -> None:
        self.server_state.total_requests += 1
        self._request = None
        if request.more_body and not self._parser_failed:
            # Answered before its body ended (a 401 for a PUT, say): what still arrives
            # cannot be told apart from a next request, so nothing more is parsed; the
            # rest is read and dropped while the answer reaches the client (a plain
            # close with unread input would reset the connection and lose the answer).
            self._parser_failed = True
            self._linger()
            return
        if not request.keep_alive or self._parser_failed:
            self.close()
            return
        if self._queue:
            self._start(self._queue.popleft())
            return
        self.resume_reading()
        self._become_idle(min(self._limits.keepalive_timeout, self._limits.header_timeout))

    @property
    def default_headers(self) -> bytes:
        """uvicorn's Date (and configured) headers, formatted once per new list (1/s)."""
        current = self.server_state.default_headers
        cached = _DEFAULT_HEADERS
        if cached[0] is not current:
            text = b"".join(b"%s: %s\r\n" % pair for pair in current)
            cached[:] = [current, text, len(current)]
        return cached[1]  # type: ignore[no-any-return]

    @property
    def default_header_lines(self) -> int:
        return _DEFAULT_HEADERS[2]  # type: ignore[no-any-return]

    def write(self, data: bytes) -> None:
        if not self._closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        if self.write_paused and not self._closed:
            self._drain_waiter = self.loop.create_future()
            await self._drain_waiter

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_reading(self) -> None:
        if not self._reading_paused and not self._closed and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and not self._closed and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    # limits
    def _become_idle(self, wait: float) -> None:
        """Between requests: the next head is due within header_timeout from now."""
        self._head_deadline = self.loop.time() + self._limits.header_timeout
        self._register.idle[self] = None
        self._timer = self.loop.call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        phase = self._phase
        if phase == "head":
            remaining = self._head_deadline - self.loop.time()
            if remaining > 0:  # the keep-alive wait ended with a head under way
                self._timer = self.loop.call_later(remaining, self._on_timer)
                return
            self._refuse(408, "The request's header fields did not arrive in time.")
        elif phase == "body" and self._parsing is not None:
            request = self._parsing
            request.keep_alive = False
            request.fail(RequestTimeout())
            self.pause_reading()
        elif self._request is None:
            self.close()  # idle for too long

    def _refuse(self, status: int, detail: str) -> None:
        """Stop reading this connection; answer what can still be answered, then close."""
        self._parser_failed = True
        self.pause_reading()
        self._queue.clear()
        request = self._parsing
        if self._phase == "body" and request is not None:
            # The head was fine, the body is not: the application answers it.
            request.keep_alive = False
            request.fail(RequestTimeout() if status == 408 else MalformedRequest(detail))
            return
        logger.info(
            "request refused at the edge",
            extra={"status": status, "detail": detail, "client": self._client},
        )
        if self._request is not None and not self._request.response_complete:
            self._request.keep_alive = False  # finish the response in progress, then close
            return
        self.write(edge_response(status, detail))
        self._linger()

    def _linger(self) -> None:
        """Close after the answer without losing it: closing a socket with unread input
        sends a reset, which can discard the answer before the client reads it. So send
        FIN first, then read and drop what the client still sends, briefly."""
        transport = self.transport
        if transport is None or transport.is_closing() or not transport.can_write_eof():
            self.close()
            return
        transport.write_eof()
        self.resume_reading()
        self._cancel_timer()
        self._timer = self.loop.call_later(LINGER_SECONDS, self.close)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _forget(self) -> None:
        self._register.idle.pop(self, None)
        self.server_state.connections.discard(self)
        if self._counted:
            self._counted = False
            self._register.open -= 1

    def close(self) -> None:
        self._cancel_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def evict(self) -> None:
        """Give this idle connection's place to a new client."""
        self._forget()
        self.close()

    def shutdown(self) -> None:
        """uvicorn's shutdown: close when idle, else after the response in progress."""
        request = self._request
        if request is None or request.response_complete:
            self.close()
        else:
            request.keep_alive = False


def protocol_factory(limits: EdgeLimits, connections: Connections) -> Any:
    """What uvicorn's `http` option takes: called with its config and server state."""
    return functools.partial(EdgeProtocol, limits=limits, connections=connections)
