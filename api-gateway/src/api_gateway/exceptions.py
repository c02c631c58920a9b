"""The gateway's own problem types (RFC 9457), in the contract's order of precedence.

GatewayProblem (shop_common Problem)
  RouteNotFound            404 unknown path, never forwarded
  MethodNotAllowed         405 with Allow
  NotAuthenticated         401 no token where one is needed, WWW-Authenticate: Bearer
    InvalidToken           401 a token was given and is not acceptable (error="invalid_token")
  RoleForbidden            403 authenticated, but the route needs another role
  TooManyRequests          429 the client address's limit is reached, with Retry-After
  MalformedRequest         400 a body that cannot be parsed (the head was fine)
  RequestTimeout           408 the body did not arrive within BODY_TIMEOUT_SECONDS
  BodyTooLarge             413 over max_body_bytes (Content-Length, or counted while reading)
  BadGateway               502 the upstream answered with something that is not HTTP, or dropped
  UpstreamUnavailable      503 no instance of the upstream accepts connections
    KeysUnavailable        503 the auth-service's keys are unknown, so no token can be checked
  UpstreamTimeout          504 no answer within UPSTREAM_TIMEOUT
"""

from __future__ import annotations

from collections.abc import Mapping

from shop_common.problems import Problem


class GatewayProblem(Problem):
    pass


class RouteNotFound(GatewayProblem):
    status = 404

    def __init__(self) -> None:
        super().__init__("No such path.")


class MethodNotAllowed(GatewayProblem):
    status = 405

    def __init__(self, allow: str) -> None:
        super().__init__("This path does not accept that method.", headers={"Allow": allow})


BEARER_CHALLENGE = 'Bearer realm="shop"'


class NotAuthenticated(GatewayProblem):
    status = 401
    headers: Mapping[str, str] | None = {"WWW-Authenticate": BEARER_CHALLENGE}

    def __init__(self, detail: str = "This request needs a bearer token.") -> None:
        super().__init__(detail)


class InvalidToken(NotAuthenticated):
    headers = {"WWW-Authenticate": f'{BEARER_CHALLENGE}, error="invalid_token"'}

    def __init__(self, reason: str) -> None:
        super().__init__("The bearer token is not valid.")
        # Logged, never sent: the client learns only that the token was refused.
        self.reason = reason


class RoleForbidden(GatewayProblem):
    status = 403

    def __init__(self) -> None:
        super().__init__("Your role does not allow this request.")


class TooManyRequests(GatewayProblem):
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many requests from this address; try again later.",
            headers={"Retry-After": str(retry_after)},
        )


class MalformedRequest(GatewayProblem):
    status = 400

    def __init__(self, detail: str = "The request body could not be read.") -> None:
        super().__init__(detail)


class RequestTimeout(GatewayProblem):
    status = 408
    headers: Mapping[str, str] | None = {"Connection": "close"}

    def __init__(self) -> None:
        super().__init__("The request body did not arrive in time.")


class BodyTooLarge(GatewayProblem):
    status = 413

    def __init__(self) -> None:
        super().__init__("The request body is larger than allowed.")


class BadGateway(GatewayProblem):
    status = 502

    def __init__(self) -> None:
        super().__init__("The upstream service failed to answer properly.")


class UpstreamUnavailable(GatewayProblem):
    status = 503
    headers: Mapping[str, str] | None = {"Retry-After": "1"}

    def __init__(self, detail: str = "The upstream service is unavailable.") -> None:
        super().__init__(detail)


class KeysUnavailable(UpstreamUnavailable):
    def __init__(self) -> None:
        super().__init__("The token cannot be checked now: the auth service's keys are unknown.")


class UpstreamTimeout(GatewayProblem):
    status = 504

    def __init__(self) -> None:
        super().__init__("The upstream service did not answer in time.")
