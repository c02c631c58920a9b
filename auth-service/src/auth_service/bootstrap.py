"""Start-up work: the signing key directory and the ADMIN from ADMIN_EMAIL/ADMIN_PASSWORD."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service import repository
from auth_service.audit import security_event
from auth_service.config import Settings
from auth_service.db import utc_now
from auth_service.passwords import PasswordHasher, new_password_problem_sync
from auth_service.schemas import NewEmail, NewPassword
from shop_common.cli import CommandFailed

ADMIN_NAME = "Administrator"
_EMAIL: TypeAdapter[str] = TypeAdapter(NewEmail)
_PASSWORD: TypeAdapter[str] = TypeAdapter(NewPassword)


class StartupError(CommandFailed):
    """A setting makes starting impossible; the message says which and why (`serve`
    prints it in one line)."""


@dataclass(frozen=True, slots=True)
class AdminCredentials:
    email: str
    password: str


def admin_credentials(settings: Settings) -> AdminCredentials | None:
    """The configured ADMIN, checked by the registration rules; None when not configured."""
    # Empty counts as unset: compose files pass `ADMIN_EMAIL: ${ADMIN_EMAIL:-}` through.
    email = settings.admin_email or None
    password = (
        settings.admin_password.get_secret_value() if settings.admin_password else ""
    ) or None
    if email is None and password is None:
        return None
    if email is None or password is None:
        raise StartupError("ADMIN_EMAIL and ADMIN_PASSWORD must be set together")
    try:
        email = _EMAIL.validate_python(email)
    except ValidationError:
        raise StartupError("ADMIN_EMAIL is not a valid email address") from None
    try:
        password = _PASSWORD.validate_python(password)
        acceptable = new_password_problem_sync(password) is None
    except ValidationError:
        acceptable = False
    if not acceptable:
        # The message never repeats the password, only what is wrong with it.
        raise StartupError(
            "ADMIN_PASSWORD is not acceptable: it must be 8 to 128 characters "
            "(after NFKC normalisation) of valid Unicode"
        )
    return AdminCredentials(email=email, password=password)


async def bootstrap_admin(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, hasher: PasswordHasher
) -> None:
    """Create the configured ADMIN unless an account has that email; never change one.

    Replicas starting together may all try: the unique email lets one insert win and the
    others see the IntegrityError and move on.
    """
    credentials = admin_credentials(settings)
    if credentials is None:
        return
    async with sessions() as session:
        existing = await repository.get_account_by_email(session, credentials.email)
        if existing is None:
            password_hash = await hasher.hash(credentials.password)
            try:
                admin = await repository.add_account(
                    session,
                    name=ADMIN_NAME,
                    email=credentials.email,
                    password_hash=password_hash,
                    role="ADMIN",
                    now=utc_now(),
                )
                await session.commit()
            except IntegrityError:
                await session.rollback()
            else:
                security_event("admin_created", account_id=str(admin.id), source="ADMIN_EMAIL")
                return
            existing = await repository.get_account_by_email(session, credentials.email)
        if existing is not None and existing.role != "ADMIN":
            security_event(
                "admin_bootstrap_skipped",
                account_id=str(existing.id),
                reason="ADMIN_EMAIL belongs to an existing account that is not an ADMIN; "
                "left unchanged",
            )
