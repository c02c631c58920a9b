"""Request dependencies: the session, the caller, the service's collaborators on app.state,
and the chained account checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import service
from auth_service.config import Settings
from auth_service.exceptions import EmailRateLimited
from auth_service.models import Account
from auth_service.passwords import PasswordHasher
from auth_service.service import Clock
from auth_service.signing_keys import KeyRing
from auth_service.tokens import TokenIssuer
from shop_common.credential import Caller
from shop_common.dependencies import get_caller, get_session

SessionDep = Annotated[AsyncSession, Depends(get_session)]
CallerDep = Annotated[Caller, Depends(get_caller)]


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.hasher
    return hasher


async def _issuer(request: Request) -> TokenIssuer:
    issuer: TokenIssuer = request.app.state.issuer
    return issuer


async def _clock(request: Request) -> Clock:
    # On app.state so that tests can move time forward (session expiry, retention).
    clock: Clock = request.app.state.clock
    return clock


async def _keyring(request: Request) -> KeyRing:
    keyring: KeyRing = request.app.state.keyring
    return keyring


SettingsDep = Annotated[Settings, Depends(_settings)]
HasherDep = Annotated[PasswordHasher, Depends(_hasher)]
IssuerDep = Annotated[TokenIssuer, Depends(_issuer)]
ClockDep = Annotated[Clock, Depends(_clock)]
KeyRingDep = Annotated[KeyRing, Depends(_keyring)]


async def _current_account(caller: CallerDep, session: SessionDep) -> Account:
    return await service.authenticated_account(session, caller)


async def _admin_account(caller: CallerDep, session: SessionDep) -> Account:
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
