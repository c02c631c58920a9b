"""Request dependencies: the session, the caller, the service's collaborators on app.state,
and the chained account checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
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
from shop_common.dependencies import app_state_dependency, get_caller, get_session

SessionDep = Annotated[AsyncSession, Depends(get_session)]
CallerDep = Annotated[Caller, Depends(get_caller)]
SettingsDep = Annotated[Settings, Depends(app_state_dependency("settings"))]
HasherDep = Annotated[PasswordHasher, Depends(app_state_dependency("hasher"))]
IssuerDep = Annotated[TokenIssuer, Depends(app_state_dependency("issuer"))]
# On app.state so that tests can move time forward (session expiry, retention).
ClockDep = Annotated[Clock, Depends(app_state_dependency("clock"))]
KeyRingDep = Annotated[KeyRing, Depends(app_state_dependency("keyring"))]


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
