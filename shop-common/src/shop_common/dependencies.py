"""Request dependencies every service with a database shares: its session, its caller,
its conditional-request headers, the collaborators its lifespan put on app.state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Request
from pydantic import WithJsonSchema
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.credential import Caller
from shop_common.database import open_session
from shop_common.etags import Condition, parse_condition
from shop_common.problems import Problem


class CallerRequired(Problem):
    """A request without the credential GatewayGuard verified (401)."""

    status = 401
    headers = {"WWW-Authenticate": "Bearer"}


class AuthenticationRequired(Problem):
    """A vouched-for request with no signed-in user where the route needs one (401)."""

    status = 401
    headers = {"WWW-Authenticate": "Bearer"}


def signed_in_user_id(caller: Caller, *, sign_in: str) -> uuid.UUID:
    """The signed-in user's id; AuthenticationRequired, with `sign_in` as its detail, when
    the request has none (the gateway checks this too: defence in depth)."""
    if caller.user_id is None:
        raise AuthenticationRequired(sign_in)
    try:
        return uuid.UUID(caller.user_id)
    except ValueError:
        raise AuthenticationRequired("The caller is not a known user.") from None


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Opens and closes only: the use cases commit, anything uncommitted is rolled back."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with open_session(sessionmaker) as session:
        yield session


async def get_caller(request: Request) -> Caller:
    """The caller the gateway (or a calling service) vouched for."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        raise CallerRequired("This service only accepts requests from the gateway.")
    return caller


def app_state_dependency(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency returning `app.state.<name>`, which the lifespan (or a test) set.

    Typed by the `Annotated[...]` alias that uses it: app.state holds Any either way."""

    async def from_app_state(request: Request) -> Any:
        # Looked up per request, not captured: tests replace app.state attributes (the clock).
        return getattr(request.app.state, name)

    return from_app_state


def if_match_dependency(
    thing: str, example_etag: str
) -> Callable[[list[str] | None], Awaitable[Condition | None]]:
    """The If-Match header of a write on `thing` ("product", "order") as a Condition.
    Described as one string (a comma-separated list of ETags, or `*`), as it travels;
    every line of a repeated header is read."""
    header = Annotated[
        list[str] | None,
        Header(
            alias="If-Match",
            description="ETags (comma-separated) or `*`: the change happens only if one of "
            f"them is the {thing}'s current ETag, else 412.",
        ),
        WithJsonSchema({"type": "string", "examples": [example_etag, "*"]}),
    ]

    async def if_match_condition(if_match: list[str] | None = None) -> Condition | None:
        return parse_condition(if_match or [])

    # Set as an object, not a string: FastAPI could not resolve this module's postponed
    # annotation naming a local.
    if_match_condition.__annotations__["if_match"] = header
    return if_match_condition
