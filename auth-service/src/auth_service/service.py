"""Use cases and their rules: accounts, login sessions, roles. Commits explicitly."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import repository
from auth_service.audit import email_hash, security_event
from auth_service.config import Settings
from auth_service.cursors import MalformedCursor, UserCursor, decode_cursor, encode_cursor
from auth_service.db import utc_now
from auth_service.exceptions import (
    AccountNotFound,
    AdminRequired,
    EmailAlreadyRegistered,
    InvalidCredentials,
    InvalidCursor,
    InvalidRefreshToken,
    LastAdminDemotion,
    NotAuthenticated,
)
from auth_service.models import Account
from auth_service.passwords import PasswordHasher
from auth_service.schemas import (
    Role,
    TokenPair,
    UserLogin,
    UserPage,
    UserPublic,
    UserRegister,
)
from auth_service.tokens import (
    AccessTokenClaims,
    TokenIssuer,
    hash_refresh_token,
    new_refresh_token,
)
from shop_common.credential import Caller

Clock = Callable[[], datetime]


def parse_uuid(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def register(
    session: AsyncSession, data: UserRegister, *, hasher: PasswordHasher, clock: Clock = utc_now
) -> Account:
    # Checked first so a duplicate costs no bcrypt; the unique constraint decides races.
    if await repository.get_account_by_email(session, data.email) is not None:
        raise EmailAlreadyRegistered()
    password_hash = await hasher.hash(data.password)
    try:
        account = await repository.add_account(
            session,
            name=data.name,
            email=data.email,
            password_hash=password_hash,
            role="USER",
            now=clock(),
        )
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise EmailAlreadyRegistered() from None
    return account


async def login(
    session: AsyncSession,
    data: UserLogin,
    *,
    hasher: PasswordHasher,
    issuer: TokenIssuer,
    settings: Settings,
    clock: Clock = utc_now,
) -> TokenPair:
    account = await repository.get_account_by_email(session, data.email)
    # An unknown email is checked against a dummy hash: both failures take as long.
    valid = await hasher.verify(
        data.password, account.password_hash if account is not None else None
    )
    if account is None or not valid:
        security_event(
            "login_failed",
            reason="unknown_email" if account is None else "wrong_password",
            account_id=str(account.id) if account is not None else None,
            email_hash=email_hash(data.email),
        )
        raise InvalidCredentials()
    now = clock()
    session_id = uuid.uuid4()
    refresh_token = new_refresh_token()
    await repository.add_login_session(
        session,
        session_id=session_id,
        account_id=account.id,
        refresh_token_hash=hash_refresh_token(refresh_token),
        now=now,
        expires_at=now + timedelta(seconds=settings.refresh_absolute_seconds),
    )
    # Read the role again now that the session row exists: a role change that
    # committed meanwhile is seen here, and one that comes later waits for this
    # commit and then revokes this session with the others.
    role = await repository.get_role_for_share(session, account.id)
    assert role is not None  # the session row references the account
    tokens = _token_pair(issuer, account.id, role, session_id, refresh_token, now)
    await session.commit()
    return tokens


async def refresh(
    session: AsyncSession,
    refresh_token: str,
    *,
    issuer: TokenIssuer,
    settings: Settings,
    clock: Clock = utc_now,
) -> TokenPair:
    now = clock()
    old_hash = hash_refresh_token(refresh_token)
    new_token = new_refresh_token()
    rotated = await repository.rotate_refresh_token(
        session,
        old_hash=old_hash,
        new_hash=hash_refresh_token(new_token),
        now=now,
        idle_since=now - timedelta(seconds=settings.refresh_idle_seconds),
    )
    if rotated is None:
        await _revoke_if_reused(session, old_hash, now)
        raise InvalidRefreshToken()
    session_id, account_id = rotated
    account = await repository.get_account(session, account_id)
    assert account is not None  # the session row references it
    tokens = _token_pair(issuer, account.id, account.role, session_id, new_token, now)
    await session.commit()
    return tokens


async def _revoke_if_reused(session: AsyncSession, token_hash: str, now: datetime) -> None:
    session_id = await repository.find_session_of_used_token(session, token_hash)
    if session_id is None:
        return
    # The token was already exchanged: whoever holds it (thief or client) is not the
    # only holder, so every token descended from that login dies.
    account_id = await repository.revoke_session(session, session_id, now=now)
    await session.commit()
    security_event(
        "refresh_token_reuse",
        session_id=str(session_id),
        account_id=str(account_id) if account_id is not None else None,
        session_revoked=account_id is not None,
    )


async def logout(session: AsyncSession, refresh_token: str, *, clock: Clock = utc_now) -> None:
    token_hash = hash_refresh_token(refresh_token)
    session_id = await repository.find_session_by_token(session, token_hash)
    if session_id is None:
        session_id = await repository.find_session_of_used_token(session, token_hash)
    if session_id is None:
        return
    account_id = await repository.revoke_session(session, session_id, now=clock())
    if account_id is not None:
        await session.commit()
        security_event(
            "session_revoked",
            reason="logout",
            session_id=str(session_id),
            account_id=str(account_id),
        )


async def authenticated_account(session: AsyncSession, caller: Caller) -> Account:
    """The caller's account; 401 for anonymous callers and for ended sessions."""
    account_id = parse_uuid(caller.user_id)
    if account_id is None:
        raise NotAuthenticated()
    session_id = parse_uuid(caller.session_id)
    if session_id is not None and await repository.is_session_revoked(session, session_id):
        raise NotAuthenticated("The session has ended.")
    account = await repository.get_account(session, account_id)
    if account is None:
        raise NotAuthenticated()
    return account


async def admin_account(session: AsyncSession, caller: Caller) -> Account:
    """The caller's account if both the gateway and the database say ADMIN, else 401/403."""
    account = await authenticated_account(session, caller)
    if not caller.is_admin or account.role != "ADMIN":
        raise AdminRequired()
    return account


async def list_users(session: AsyncSession, *, limit: int, cursor: str | None) -> UserPage:
    after: UserCursor | None = None
    if cursor is not None:
        try:
            after = decode_cursor(cursor)
        except MalformedCursor:
            raise InvalidCursor() from None
    rows = await repository.list_accounts(session, limit=limit + 1, after=after)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(UserCursor(created_at=last.created_at, id=last.id))
    return UserPage(items=[UserPublic.model_validate(row) for row in page], next_cursor=next_cursor)


async def change_role(
    session: AsyncSession,
    *,
    actor: Account,
    account_id: str,
    role: Role,
    clock: Clock = utc_now,
) -> Account:
    target_id = parse_uuid(account_id)
    target = await repository.get_account(session, target_id) if target_id else None
    if target is None:
        raise AccountNotFound()
    if target.role == role:
        return target
    if role == "USER":
        admins = await repository.lock_admins(session)
        # Re-read under the lock: a concurrent request may have changed the target.
        await session.refresh(target)
        if target.role == role:
            await session.commit()
            return target
        if len(admins) <= 1:
            raise LastAdminDemotion()
    old_role = target.role
    target.role = role
    revoked = await repository.revoke_account_sessions(session, target.id, now=clock())
    await session.commit()
    security_event(
        "role_changed",
        account_id=str(target.id),
        old_role=old_role,
        new_role=role,
        changed_by=str(actor.id),
        sessions_revoked=revoked,
    )
    return target


async def revoked_sessions(
    session: AsyncSession, *, since: datetime | None, settings: Settings, clock: Clock = utc_now
) -> tuple[list[tuple[uuid.UUID, datetime]], datetime]:
    """Sessions revoked after `since` (at most the revocation retention back)."""
    now = clock()
    horizon = now - timedelta(seconds=settings.revocation_retention_seconds)
    start = horizon if since is None or since < horizon else since
    return await repository.list_revoked_sessions(session, since=start), now


def _token_pair(
    issuer: TokenIssuer,
    account_id: uuid.UUID,
    role: str,
    session_id: uuid.UUID,
    refresh_token: str,
    now: datetime,
) -> TokenPair:
    access = issuer.access_token(
        AccessTokenClaims(account_id=account_id, role=role, session_id=session_id),
        now=now,
    )
    return TokenPair(
        access_token=access,
        expires_in=issuer.ttl_seconds,
        refresh_token=refresh_token,
        token=access,
    )
