"""Services refuse every request that lacks a valid gateway credential."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from shop_common.credential import CREDENTIAL_HEADER, CredentialVerifier, InvalidCredential
from shop_common.logging import log_security_event, user_id_var
from shop_common.problems import PROBLEM_CONTENT_TYPE, problem_body
from shop_common.request_context import header_value

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
_HEADER = CREDENTIAL_HEADER.encode()


class GatewayGuard:
    """Puts the verified Caller in scope["state"]["caller"], or answers 401."""

    def __init__(self, app: ASGIApp, *, verifier: CredentialVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        raw = header_value(scope, _HEADER)
        try:
            if raw is None:
                raise InvalidCredential("no gateway credential")
            caller = self.verifier.verify(raw.decode("latin-1"))
        except InvalidCredential as exc:
            log_security_event(
                "direct_call_refused", path=scope["path"], method=scope["method"], reason=str(exc)
            )
            body = problem_body(
                401, detail="This service only accepts requests that come through the gateway."
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                        (b"www-authenticate", b'Bearer realm="gateway"'),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["caller"] = caller
        user_id_var.set(caller.user_id)
        await self.app(scope, receive, send)
