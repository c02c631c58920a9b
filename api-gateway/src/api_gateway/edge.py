"""Limits at the edge: the numbers, the answers given before any request exists, and the
register of open client connections (which are idle, so a new client can take a place).

edge_protocol.py enforces them on each connection; docs/decisions/gateway-edge-server.md
says why the gateway has its own connection protocol under uvicorn.
"""

from __future__ import annotations

import resource
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from api_gateway.responses import SECURITY_HEADERS
from shop_common.problems import PROBLEM_CONTENT_TYPE, problem_body

if TYPE_CHECKING:
    from api_gateway.config import Settings
    from api_gateway.edge_protocol import EdgeProtocol

# Descriptors kept for everything that is not a client: upstream pools, Redis, logs.
RESERVED_DESCRIPTORS = 512


@dataclass(frozen=True)
class EdgeLimits:
    max_header_bytes: int = 32 * 1024  # request line and header fields together
    max_header_fields: int = 100
    header_timeout: float = 10.0  # from the connection's opening or the previous response
    keepalive_timeout: float = 5.0  # idle between requests (the header timeout bounds it too)
    body_timeout: float = 30.0  # from the end of the head to the end of the body
    max_connections: int = 10_000

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_header_fields=settings.max_header_fields,
            header_timeout=settings.header_timeout_seconds,
            keepalive_timeout=settings.keepalive_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            max_connections=settings.max_connections,
        )


def raise_descriptor_limit(wanted_connections: int) -> int:
    """Lift the soft RLIMIT_NOFILE to the hard one; the connections that then fit.

    Past the limit accept() fails and a new client waits unanswered in the backlog;
    below it, the gateway can always accept and then answer (or evict) at once.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(1, min(wanted_connections, soft - RESERVED_DESCRIPTORS))


class Connections:
    """Open client connections; the idle ones (between requests, or still sending a head)
    in the order they became idle, oldest first: the first to give way to a new client."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.idle: dict[EdgeProtocol, None] = {}

    def admit(self) -> bool:
        """Room for one more: at once, or by closing the oldest idle connection."""
        if self.open < self.limit:
            return True
        idle = self.idle
        if not idle:
            return False
        oldest = next(iter(idle))
        del idle[oldest]
        oldest.evict()
        return True


def edge_response(status: int, detail: str, *, retry_after: int | None = None) -> bytes:
    """A whole problem+json response that closes the connection, for answers given before
    (or instead of) a request the application sees."""
    # A new id: the client's own X-Request-ID was in the head that was refused.
    request_id = uuid.uuid4().hex
    body = problem_body(status, detail=detail, request_id=request_id)
    head = [
        b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
        b"x-request-id: " + request_id.encode() + b"\r\n",
        b"content-type: " + PROBLEM_CONTENT_TYPE.encode() + b"\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n",
    ]
    head.extend(name + b": " + value + b"\r\n" for name, value in SECURITY_HEADERS)
    if retry_after is not None:
        head.append(b"retry-after: %d\r\n" % retry_after)
    return b"".join(head) + b"\r\n" + body


_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    413: b"Content Too Large",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}
