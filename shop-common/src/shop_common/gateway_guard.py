"""Services refuse every request that lacks a valid credential minted for it.

The credential must be bound to this very request (method, path, query, X-Request-ID)
and minted by a caller the route accepts (shop_common.callers): the gateway for every
route unless the route names others.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from shop_common.callers import CallerRules
from shop_common.credential import (
    CREDENTIAL_HEADER,
    CredentialVerifier,
    InvalidCredential,
    RequestBinding,
)
from shop_common.logging import log_security_event, user_id_var
from shop_common.problems import PROBLEM_CONTENT_TYPE, problem_body

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
_HEADER = CREDENTIAL_HEADER.encode()
_REQUEST_ID = b"x-request-id"


class GatewayGuard:
    """Puts the verified Caller in scope["state"]["caller"], or answers 401 (403 when the
    route does not accept the credential's minter)."""

    def __init__(
        self, app: ASGIApp, *, verifier: CredentialVerifier, routes: Iterable[BaseRoute] = ()
    ) -> None:
        self.app = app
        self.verifier = verifier
        # Built with the middleware stack, when every route is in place.
        self.rules = CallerRules(routes)
        missing = self.rules.issuers - verifier.issuers
        if missing:
            raise ValueError(
                f"routes accept {', '.join(sorted(missing))} but no public key is loaded for it"
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path is not None else scope["path"]
        credential = request_id = None
        for name, value in scope["headers"]:
            if name == _HEADER and credential is None:
                credential = value
            elif name == _REQUEST_ID and request_id is None:
                request_id = value  # the first, as RequestContextMiddleware reads it
        try:
            if credential is None:
                raise InvalidCredential("no credential")
            binding = RequestBinding(
                method,
                path,
                scope["query_string"],
                request_id.decode("latin-1") if request_id is not None else "",
            )
            caller = self.verifier.verify(credential.decode("latin-1"), binding)
        except InvalidCredential as exc:
            log_security_event("direct_call_refused", path=path, method=method, reason=str(exc))
            await _refuse(
                send, 401, "This service only accepts requests that come through the gateway."
            )
            return
        if caller.issuer not in self.rules.accepted(method, scope["path"]):
            log_security_event(
                "caller_refused", path=path, method=method, reason=f"minted by {caller.issuer}"
            )
            await _refuse(send, 403, "This route does not accept requests from this caller.")
            return
        scope.setdefault("state", {})["caller"] = caller
        user_id_var.set(caller.user_id)
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = problem_body(status, detail=detail)
    headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="gateway"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
