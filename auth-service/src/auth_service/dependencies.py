"""Request dependencies: the database session, the caller, and the chained role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.exceptions import EmailRateLimited, NotAuthenticated
from auth_service.models import Account
from auth_service.service import AuthService
from auth_service.signing_keys import KeyRing
from shop_common.credential import Caller
from shop_common.database import open_session


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # Opens and closes only: service.py commits, anything uncommitted is rolled back.
    async with open_session(request.app.state.sessionmaker) as session:
        yield session


def _service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth_service
    return service


def _keyring(request: Request) -> KeyRing:
    keyring: KeyRing = request.app.state.keyring
    return keyring


def _caller(request: Request) -> Caller:
    """The caller the gateway vouched for (GatewayGuard put it there)."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        raise NotAuthenticated()
    return caller


SessionDep = Annotated[AsyncSession, Depends(_session)]
ServiceDep = Annotated[AuthService, Depends(_service)]
KeyRingDep = Annotated[KeyRing, Depends(_keyring)]
CallerDep = Annotated[Caller, Depends(_caller)]


async def _current_account(caller: CallerDep, session: SessionDep, service: ServiceDep) -> Account:
    return await service.authenticated_account(session, caller)


async def _admin_account(caller: CallerDep, session: SessionDep, service: ServiceDep) -> Account:
    return await service.admin_account(session, caller)


CurrentAccountDep = Annotated[Account, Depends(_current_account)]
AdminDep = Annotated[Account, Depends(_admin_account)]


def refuse_when_email_limited(caller: Caller) -> None:
    """429 when the gateway marked this email's limit as exhausted.

    Called inside the endpoint, after FastAPI validated the body: the contract ranks 422
    above the per-email 429 (a dependency would run before the body is validated).
    """
    if caller.email_retry_after is not None:
        raise EmailRateLimited(caller.email_retry_after)
