"""One request's response side: every response carries X-Request-ID, the security
headers, and CORS headers for an allowed origin."""

from __future__ import annotations

from starlette.types import Send

from shop_common.problems import PROBLEM_CONTENT_TYPE, Problem, problem_body

_PROBLEM_TYPE = PROBLEM_CONTENT_TYPE.encode()
CLIENT_CLOSED = 499  # logged when the client went away before any response (nginx's code)
# The API answers JSON only: nothing may load, run or frame. A route serving a page (the
# API docs) sets its own policy on the exchange.
JSON_CSP = b"default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
# Set by the gateway alone: an upstream's own values are dropped.
SECURITY_HEADER_NAMES = frozenset(
    {name for name, _ in SECURITY_HEADERS} | {b"content-security-policy"}
)


class Exchange:
    """What the access log and metrics need to know, and the way to answer."""

    __slots__ = (
        "_id_header",
        "_send",
        "content_security_policy",
        "extra_headers",
        "request_id",
        "route",
        "status",
        "user_id",
    )

    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self.request_id = request_id
        self._id_header = request_id.encode("ascii")
        self.extra_headers: list[tuple[bytes, bytes]] | None = None
        self.route: str | None = None
        self.status: int | None = None  # set once the response has started
        self.user_id: str | None = None
        self.content_security_policy = JSON_CSP

    @property
    def id_header(self) -> bytes:
        return self._id_header

    @property
    def started(self) -> bool:
        return self.status is not None

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        headers.append((b"x-request-id", self._id_header))
        headers.extend(SECURITY_HEADERS)
        headers.append((b"content-security-policy", self.content_security_policy))
        if self.extra_headers:
            headers.extend(self.extra_headers)
        self.status = status
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data: bytes, *, more: bool = False) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def respond(
        self,
        status: int,
        body: bytes,
        content_type: bytes,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        all_headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        if headers:
            all_headers.extend(headers)
        await self.start(status, all_headers)
        await self.body(body)

    async def problem(self, problem: Problem) -> None:
        body = problem_body(
            problem.status,
            title=problem.title,
            detail=problem.detail,
            type_=problem.type,
            errors=problem.errors,
            request_id=self.request_id,
        )
        extra = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (problem.headers or {}).items()
        ]
        await self.respond(problem.status, body, _PROBLEM_TYPE, extra)
