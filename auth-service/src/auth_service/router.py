"""The /auth endpoints: validate, call the service, shape the response."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from auth_service import passwords, service
from auth_service.dependencies import (
    AdminDep,
    CallerDep,
    ClockDep,
    CurrentAccountDep,
    HasherDep,
    IssuerDep,
    KeyRingDep,
    SessionDep,
    SettingsDep,
    refuse_when_email_limited,
)
from auth_service.exceptions import InvalidNewPassword
from auth_service.schemas import (
    JwkSet,
    RefreshTokenRequest,
    RevocationList,
    RevokedSession,
    TokenPair,
    UserLogin,
    UserPage,
    UserPublic,
    UserRegister,
    UserRoleUpdate,
)
from shop_common.json_body import JsonRoute
from shop_common.problems import problem_responses

router = APIRouter(prefix="/auth", tags=["auth"], route_class=JsonRoute)
internal_router = APIRouter(prefix="/internal", include_in_schema=False)

# Bodies can meet the JSON guard (400, 413, 415) and validation (422). The gateway guard's
# 401 is not declared per route: through the gateway a request always has a credential.
_BODY_PROBLEMS = (400, 413, 415, 422)
_NO_STORE: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "Cache-Control": {
                "description": "`no-store`: no cache may keep tokens.",
                "required": True,
                "schema": {"type": "string", "examples": ["no-store"]},
            }
        }
    }
}
UserId = Annotated[str, Path(alias="id", description="The user's id (a UUID; else 404).")]


def _no_store(response: Response) -> None:
    # Tokens must not be kept by any cache between the client and us.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


@router.post(
    "/register",
    status_code=201,
    response_model=UserPublic,
    operation_id="register",
    summary="Register a user",
    response_description="The new user (always a USER).",
    responses={
        201: {
            "links": {
                "UpdateUserRole": {
                    "operationId": "updateUserRole",
                    "parameters": {"id": "$response.body#/id"},
                    "description": "An ADMIN may change the new user's role.",
                }
            }
        },
        **problem_responses(
            *_BODY_PROBLEMS,
            why={
                409: "An account with this email exists (whatever its case).",
                429: "This email's registration limit is reached.",
            },
        ),
    },
)
async def register(
    body: UserRegister,
    session: SessionDep,
    caller: CallerDep,
    hasher: HasherDep,
    clock: ClockDep,
) -> UserPublic:
    """Create an account. It always gets the USER role; a `role` field is refused (422).

    The email is trimmed and lower-cased and must not be registered yet, whatever its
    case (409). The password is 8 to 128 characters after NFKC normalisation.
    """
    problem = await passwords.new_password_problem(body.password)
    if problem is not None:
        raise InvalidNewPassword(problem)
    refuse_when_email_limited(caller)
    account = await service.register(session, body, hasher=hasher, clock=clock)
    return UserPublic.model_validate(account)


@router.post(
    "/login",
    response_model=TokenPair,
    operation_id="login",
    summary="Log in",
    response_description="An access token and a refresh token.",
    responses={
        **_NO_STORE,
        **problem_responses(
            *_BODY_PROBLEMS,
            why={
                401: "The email or the password is wrong (the same answer for both).",
                429: "This email's failed-login limit is reached: every login for it, "
                "the right password included, gets 429 until the window passes.",
            },
        ),
    },
)
async def login(
    body: UserLogin,
    session: SessionDep,
    response: Response,
    caller: CallerDep,
    hasher: HasherDep,
    issuer: IssuerDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> TokenPair:
    """Exchange email and password for an access token and a refresh token.

    An unknown email and a wrong password get the same 401. Once an email's failed-login
    limit is reached, every login for it gets 429 until the window passes.
    """
    refuse_when_email_limited(caller)
    tokens = await service.login(
        session, body, hasher=hasher, issuer=issuer, settings=settings, clock=clock
    )
    _no_store(response)
    return tokens


@router.post(
    "/refresh",
    response_model=TokenPair,
    operation_id="refreshTokens",
    summary="Refresh the tokens",
    response_description="New tokens; the refresh token given is used up.",
    responses={
        **_NO_STORE,
        **problem_responses(
            *_BODY_PROBLEMS,
            why={
                401: "The refresh token is unknown, expired or revoked, or was used before "
                "(which ends its whole session)."
            },
        ),
    },
)
async def refresh(
    body: RefreshTokenRequest,
    session: SessionDep,
    response: Response,
    issuer: IssuerDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> TokenPair:
    """Exchange a refresh token for new tokens; the refresh token given is used up.

    Presenting a refresh token that was already used ends its whole session (401).
    """
    tokens = await service.refresh(
        session, body.refresh_token, issuer=issuer, settings=settings, clock=clock
    )
    _no_store(response)
    return tokens


@router.post(
    "/logout",
    status_code=204,
    response_class=Response,
    operation_id="logout",
    summary="Log out",
    response_description="The session has ended (also when it was unknown or ended).",
    responses=problem_responses(*_BODY_PROBLEMS),
)
async def logout(body: RefreshTokenRequest, session: SessionDep, clock: ClockDep) -> Response:
    """End the session the refresh token belongs to (the user's other sessions live on).

    Answers 204 for an unknown or already ended session too.
    """
    await service.logout(session, body.refresh_token, clock=clock)
    return Response(status_code=204)


@router.get(
    "/me",
    response_model=UserPublic,
    operation_id="getCurrentUser",
    summary="The signed-in user",
    response_description="The user the token belongs to.",
    responses=problem_responses(why={401: "The session has ended or the account is gone."}),
)
async def me(account: CurrentAccountDep) -> UserPublic:
    """The signed-in user."""
    return UserPublic.model_validate(account)


@router.get(
    "/users",
    response_model=UserPage,
    operation_id="listUsers",
    summary="List users",
    response_description="A page of users and the cursor of the next one.",
    responses=problem_responses(
        why={
            401: "The session has ended or the account is gone.",
            403: "The account is not an ADMIN (any more).",
            422: "A bad `limit`, or a cursor this API did not make.",
        }
    ),
)
async def list_users(
    _: AdminDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Users per page.")] = 20,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> UserPage:
    """Every user, oldest first (by `created_at`, then `id`), one page at a time. ADMIN only."""
    return await service.list_users(session, limit=limit, cursor=cursor)


@router.patch(
    "/users/{id}",
    response_model=UserPublic,
    operation_id="updateUserRole",
    summary="Set a user's role",
    response_description="The user with the role set.",
    responses=problem_responses(
        *_BODY_PROBLEMS,
        why={
            401: "The session has ended or the account is gone.",
            403: "The account is not an ADMIN (any more).",
            404: "No user has this id.",
            409: "This would demote the last ADMIN.",
        },
    ),
)
async def change_role(
    actor: AdminDep,
    user_id: UserId,
    body: UserRoleUpdate,
    session: SessionDep,
    clock: ClockDep,
) -> UserPublic:
    """Set a user's role. ADMIN only.

    A change ends all of that user's sessions. Setting the role the user already has
    changes nothing. Demoting the last ADMIN gets 409.
    """
    account = await service.change_role(
        session, actor=actor, account_id=user_id, role=body.role, clock=clock
    )
    return UserPublic.model_validate(account)


@router.get(
    "/jwks.json",
    response_model=JwkSet,
    operation_id="getJwks",
    summary="The token signing keys (JWKS)",
    response_description="Every public key whose tokens may still be live, by `kid`.",
)
async def jwks(keyring: KeyRingDep, response: Response) -> JwkSet:
    """The public keys that verify access tokens, by `kid`."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return JwkSet.model_validate(keyring.jwks())


@internal_router.get("/revocations", response_model=RevocationList)
async def revocations(
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    since: datetime | None = None,
) -> RevocationList:
    """For the gateways' poll: sessions revoked after `since` (RFC 3339).

    Pass the previous answer's `as_of` minus a few seconds, so that a revocation committed
    while the previous poll ran is not missed.
    """
    if since is not None:
        try:
            since = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
        except OverflowError:
            since = None  # out of range: the default window applies
    rows, as_of = await service.revoked_sessions(
        session, since=since, settings=settings, clock=clock
    )
    return RevocationList(
        revoked_sessions=[RevokedSession(sid=sid, revoked_at=at) for sid, at in rows],
        as_of=as_of,
    )
