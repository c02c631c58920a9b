"""Every query auth-service runs."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.cursors import UserCursor
from auth_service.models import Account, LoginSession, UsedRefreshToken


async def get_account(session: AsyncSession, account_id: uuid.UUID) -> Account | None:
    return await session.get(Account, account_id)


async def get_account_by_email(session: AsyncSession, email: str) -> Account | None:
    result = await session.execute(select(Account).where(Account.email == email))
    return result.scalar_one_or_none()


async def add_account(
    session: AsyncSession, *, name: str, email: str, password_hash: str, role: str, now: datetime
) -> Account:
    """Insert and flush: a taken email raises IntegrityError here."""
    account = Account(
        id=uuid.uuid4(),
        name=name,
        email=email,
        password_hash=password_hash,
        role=role,
        created_at=now,
    )
    session.add(account)
    await session.flush()
    return account


async def list_accounts(
    session: AsyncSession, *, limit: int, after: UserCursor | None
) -> list[Account]:
    query = select(Account).order_by(Account.created_at, Account.id).limit(limit)
    if after is not None:
        query = query.where(
            or_(
                Account.created_at > after.created_at,
                and_(Account.created_at == after.created_at, Account.id > after.id),
            )
        )
    return list((await session.execute(query)).scalars())


async def lock_admins(session: AsyncSession) -> list[uuid.UUID]:
    """Lock every ADMIN row until commit and return their ids.

    A no-op UPDATE rather than SELECT ... FOR UPDATE because it locks on both backends:
    PostgreSQL takes the row locks (and re-checks `role` after waiting for a concurrent
    demotion), SQLite takes its database write lock. Two demotions thus take turns and the
    second one counts the ADMINs the first one left.
    """
    result = await session.execute(
        update(Account)
        .where(Account.role == "ADMIN")
        .values(role=Account.role)
        .returning(Account.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def get_role_for_share(session: AsyncSession, account_id: uuid.UUID) -> str | None:
    """The account's role, read under a share lock held until commit.

    A role change (an UPDATE of that row) waits for the lock, so it cannot slip in
    between this read and the commit of the caller's new login session.
    """
    result = await session.execute(
        select(Account.role).where(Account.id == account_id).with_for_update(read=True)
    )
    return result.scalar_one_or_none()


async def add_login_session(
    session: AsyncSession,
    *,
    session_id: uuid.UUID,
    account_id: uuid.UUID,
    refresh_token_hash: str,
    now: datetime,
    expires_at: datetime,
) -> LoginSession:
    login = LoginSession(
        id=session_id,
        account_id=account_id,
        refresh_token_hash=refresh_token_hash,
        created_at=now,
        last_used_at=now,
        expires_at=expires_at,
        revoked_at=None,
    )
    session.add(login)
    await session.flush()
    return login


async def rotate_refresh_token(
    session: AsyncSession,
    *,
    old_hash: str,
    new_hash: str,
    now: datetime,
    idle_since: datetime,
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """Swap the session's refresh token if `old_hash` is still its live token.

    One conditional UPDATE: of concurrent calls with the same token, exactly one matches.
    Returns (session id, account id), or None when nothing matched.
    """
    result = await session.execute(
        update(LoginSession)
        .where(
            LoginSession.refresh_token_hash == old_hash,
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > now,
            LoginSession.last_used_at > idle_since,
        )
        .values(refresh_token_hash=new_hash, last_used_at=now)
        .returning(LoginSession.id, LoginSession.account_id)
        .execution_options(synchronize_session=False)
    )
    row = result.one_or_none()
    if row is None:
        return None
    session.add(UsedRefreshToken(token_hash=old_hash, session_id=row[0], used_at=now))
    await session.flush()
    return row[0], row[1]


async def find_session_of_used_token(session: AsyncSession, token_hash: str) -> uuid.UUID | None:
    result = await session.execute(
        select(UsedRefreshToken.session_id).where(UsedRefreshToken.token_hash == token_hash)
    )
    return result.scalar_one_or_none()


async def find_session_by_token(session: AsyncSession, token_hash: str) -> uuid.UUID | None:
    result = await session.execute(
        select(LoginSession.id).where(LoginSession.refresh_token_hash == token_hash)
    )
    return result.scalar_one_or_none()


async def revoke_session(
    session: AsyncSession, session_id: uuid.UUID, *, now: datetime
) -> uuid.UUID | None:
    """Stamp `revoked_at` on a live session; its account id, or None if already revoked."""
    result = await session.execute(
        update(LoginSession)
        .where(LoginSession.id == session_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(LoginSession.account_id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none()


async def revoke_account_sessions(
    session: AsyncSession, account_id: uuid.UUID, *, now: datetime
) -> int:
    result = await session.execute(
        update(LoginSession)
        .where(LoginSession.account_id == account_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(LoginSession.id)
        .execution_options(synchronize_session=False)
    )
    return len(result.all())


async def is_session_revoked(session: AsyncSession, session_id: uuid.UUID) -> bool:
    """True for a revoked session; False for a live one and for an unknown id."""
    result = await session.execute(
        select(LoginSession.revoked_at).where(LoginSession.id == session_id)
    )
    return result.scalar_one_or_none() is not None


async def list_revoked_sessions(
    session: AsyncSession, *, since: datetime
) -> list[tuple[uuid.UUID, datetime]]:
    result = await session.execute(
        select(LoginSession.id, LoginSession.revoked_at)
        .where(LoginSession.revoked_at > since)
        .order_by(LoginSession.revoked_at)
    )
    return [(row[0], row[1]) for row in result.all() if row[1] is not None]
