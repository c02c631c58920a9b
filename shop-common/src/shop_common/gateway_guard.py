"""Services refuse every request that lacks a valid credential minted for it.

The credential must be bound to this very request (method, path, query, X-Request-ID)
and minted by a caller the route accepts (shop_common.callers): the gateway for every
route unless the route names others. A request whose credential's deadline has passed
is answered 503 with Retry-After before any work (its minter has given up on it); else
the deadline holds for the request (shop_common.deadline). A write the gateway sends
again (its first instance died with it in flight) is answered from its first attempt when
that one committed (shop_common.retried_writes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from shop_common.callers import CallerRules
from shop_common.credential import (
    CREDENTIAL_HEADER,
    CredentialPastDeadline,
    CredentialVerifier,
    InvalidCredential,
    RequestBinding,
)
from shop_common.deadline import request_deadline
from shop_common.logging import log_security_event, user_id_var
from shop_common.problems import PROBLEM_CONTENT_TYPE, problem_body
from shop_common.request_context import request_key_var
from shop_common.retried_writes import ReplayLookup, is_retry

logger = logging.getLogger(__name__)
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
_HEADER = CREDENTIAL_HEADER.encode()
_REQUEST_ID = b"x-request-id"


class GatewayGuard:
    """Puts the verified Caller in scope["state"]["caller"], or answers 401 (403 when the
    route does not accept the credential's minter)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: CredentialVerifier,
        routes: Iterable[BaseRoute] = (),
        replay: ReplayLookup | None = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.replay = replay
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
        except CredentialPastDeadline as exc:
            logger.warning(
                "request refused past its deadline: %s %s (%.3f s late)",
                method,
                path,
                time.time() - (exc.caller.deadline or 0.0),
            )
            await _refuse(
                send,
                503,
                "The request's deadline passed before it could be served; try again.",
                retry_after=True,
            )
            return
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
        key = caller.credential_id
        if self.replay is not None and key is not None and is_retry(method, scope["headers"]):
            try:
                answer = await self.replay(key)
            except Exception:
                # Not knowing whether the first attempt committed, applying it again could
                # apply it twice: refuse, the client may retry.
                logger.exception("cannot look up a retried write's first attempt")
                await _refuse(send, 503, "The service cannot serve this now.", retry_after=True)
                return
            if answer is not None:
                logger.info("retried write answered from its first attempt: %s %s", method, path)
                await answer(scope, receive, send)
                return
        deadline = request_deadline.set(caller.deadline)
        applied = request_key_var.set(key)
        try:
            await self.app(scope, receive, send)
        finally:
            request_key_var.reset(applied)
            request_deadline.reset(deadline)


async def _refuse(send: Send, status: int, detail: str, *, retry_after: bool = False) -> None:
    body = problem_body(status, detail=detail)
    headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="gateway"'))
    if retry_after:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
