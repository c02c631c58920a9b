"""Request dependencies every service with a database shares: its session, its caller."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.credential import Caller
from shop_common.database import open_session
from shop_common.problems import Problem


class CallerRequired(Problem):
    """A request without the credential GatewayGuard verified (401)."""

    status = 401
    headers = {"WWW-Authenticate": "Bearer"}


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
