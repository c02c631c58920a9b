"""The problems auth-service answers with (all RFC 9457 problem+json via shop_common).

Problem (shop_common.problems)
  NotAuthenticated            401  no user behind the request; WWW-Authenticate: Bearer
    InvalidCredentials        401  login: unknown email or wrong password, indistinguishable
    InvalidRefreshToken       401  refresh: unknown, used, expired or revoked token
  AdminRequired               403  an authenticated caller who is not an ADMIN
  AccountNotFound             404  no account with that id (also a malformed id)
  EmailAlreadyRegistered      409  the email is taken, whatever its case
  LastAdminDemotion           409  demoting the only remaining ADMIN
  InvalidCursor               422  a users-page cursor this API did not make
  InvalidNewPassword          422  register: not 8-128 characters after NFKC (checked in a
                                   thread, after the body's other validation)
  EmailRateLimited            429  the gateway found this email's login/register limit
                                   exhausted; answered after validation (422 wins)
"""

from __future__ import annotations

from shop_common.problems import Problem

_BEARER = {"WWW-Authenticate": "Bearer"}


class NotAuthenticated(Problem):
    status = 401
    headers = _BEARER

    def __init__(self, detail: str = "Authentication is required.") -> None:
        super().__init__(detail)


class InvalidCredentials(NotAuthenticated):
    def __init__(self) -> None:
        super().__init__("The email or password is incorrect.")


class InvalidRefreshToken(NotAuthenticated):
    def __init__(self) -> None:
        super().__init__("The refresh token is not valid.")


class AdminRequired(Problem):
    status = 403

    def __init__(self) -> None:
        super().__init__("Only an ADMIN may do this.")


class AccountNotFound(Problem):
    status = 404

    def __init__(self) -> None:
        super().__init__("No such user.")


class EmailAlreadyRegistered(Problem):
    status = 409

    def __init__(self) -> None:
        super().__init__("An account with this email already exists.")


class LastAdminDemotion(Problem):
    status = 409

    def __init__(self) -> None:
        super().__init__("The last ADMIN cannot be demoted.")


class InvalidCursor(Problem):
    status = 422

    def __init__(self) -> None:
        super().__init__(
            "The request is not valid.",
            errors=[{"field": "query.cursor", "message": "not a cursor from this API"}],
        )


class InvalidNewPassword(Problem):
    status = 422

    def __init__(self, problem: str) -> None:
        super().__init__(
            "The request is not valid.", errors=[{"field": "password", "message": problem}]
        )


class EmailRateLimited(Problem):
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many attempts for this email; try again later.",
            headers={"Retry-After": str(max(1, retry_after))},
        )
