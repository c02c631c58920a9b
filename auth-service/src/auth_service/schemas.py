"""Request and response bodies of the auth API."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

from auth_service import passwords
from shop_common.models import PlainText, StrictModel, TrimmedText

MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 100


def _valid_unicode(value: str) -> str:
    # Lone surrogates survive JSON decoding but are not text: no database or encoder
    # takes them, so they are a validation error here rather than a 500 later.
    if any(unicodedata.category(ch) == "Cs" for ch in value):
        raise ValueError("must be valid Unicode text")
    return value


def _length_between(low: int, high: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not low <= len(value) <= high:
            raise ValueError(f"must be {low} to {high} characters long")
        return value

    return check


def _registrable_email(value: str) -> str:
    if len(value) > MAX_EMAIL_LENGTH:
        raise ValueError(f"must be at most {MAX_EMAIL_LENGTH} characters long")
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError("must be a valid email address") from None
    return checked.normalized.lower()


def canonical_email(value: str) -> str:
    """The stored form of an address: normalised by email-validator, lower-cased."""
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        # Not an address anyone could have registered: looked up as typed, it just fails.
        return value.strip().lower()


def _new_password(value: str) -> str:
    normalized = passwords.normalize(value)
    problem = passwords.password_problem(normalized)
    if problem is not None:
        raise ValueError(problem)
    return normalized


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


Name = Annotated[
    TrimmedText,
    AfterValidator(_valid_unicode),
    AfterValidator(_length_between(1, MAX_NAME_LENGTH)),
    Field(json_schema_extra={"minLength": 1, "maxLength": MAX_NAME_LENGTH}),
]
NewEmail = Annotated[
    TrimmedText,
    AfterValidator(_valid_unicode),
    AfterValidator(_registrable_email),
    Field(json_schema_extra={"format": "email", "maxLength": MAX_EMAIL_LENGTH}),
]
LoginEmail = Annotated[TrimmedText, AfterValidator(_valid_unicode), AfterValidator(canonical_email)]
# Passwords keep any character, control characters included; they are NFKC-normalised.
NewPassword = Annotated[
    str,
    AfterValidator(_valid_unicode),
    AfterValidator(_new_password),
    Field(
        json_schema_extra={"minLength": passwords.MIN_LENGTH, "maxLength": passwords.MAX_LENGTH},
        description="8 to 128 characters after NFKC normalisation; any Unicode",
    ),
]
Password = Annotated[str, AfterValidator(_valid_unicode)]
OpaqueToken = Annotated[PlainText, AfterValidator(_valid_unicode)]
UtcTimestamp = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str)]
Role = Literal["USER", "ADMIN"]


class UserRegister(StrictModel):
    name: Name
    email: NewEmail
    password: NewPassword


class UserLogin(StrictModel):
    email: LoginEmail
    password: Password


class RefreshTokenRequest(StrictModel):
    refresh_token: OpaqueToken


class UserRoleUpdate(StrictModel):
    role: Role


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str
    role: Role
    created_at: UtcTimestamp


class UserPage(BaseModel):
    items: list[UserPublic]
    next_cursor: str | None


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str
    token: str = Field(description="The access token again, for clients of the original API")


class RevokedSession(BaseModel):
    sid: uuid.UUID
    revoked_at: UtcTimestamp


class RevocationList(BaseModel):
    """Sessions revoked after `since`; access tokens naming one of these sids are dead."""

    revoked_sessions: list[RevokedSession]
    as_of: UtcTimestamp


class Jwk(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class JwkSet(BaseModel):
    keys: list[Jwk]
