"""Request and response bodies of the auth API."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.config import JsonDict

from auth_service import passwords
from shop_common.models import PlainText, StrictModel, TrimmedText, trimmed_text_pattern

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
    Field(
        json_schema_extra={"minLength": 1, "pattern": trimmed_text_pattern(MAX_NAME_LENGTH)},
        description=f"1 to {MAX_NAME_LENGTH} characters after trimming; no control characters",
    ),
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
    # Not minLength/maxLength: those count the text as sent, and NFKC can lengthen it
    # ("\ufdfa" is 18 characters) or shorten it (a decomposed "e\u0301" is one).
    Field(
        json_schema_extra={"minLength": 1},
        description=f"{passwords.MIN_LENGTH} to {passwords.MAX_LENGTH} characters after NFKC "
        "normalisation; any Unicode",
    ),
]
Password = Annotated[str, AfterValidator(_valid_unicode)]
OpaqueToken = Annotated[PlainText, AfterValidator(_valid_unicode)]
UtcTimestamp = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str)]
Role = Literal["USER", "ADMIN"]

_USER_EXAMPLE: JsonDict = {
    "id": "0d9c8b7a-6f5e-4d3c-9b2a-1f0e9d8c7b6a",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "role": "USER",
    "created_at": "2025-01-31T09:30:00.123456Z",
}
_ACCESS_TOKEN_EXAMPLE = "eyJhbGciOiJFZERTQSIsImtpZCI6IjIwMjUtMDEtMzEiLCJ0eXAiOiJKV1QifQ.e30.c2ln"
_REFRESH_TOKEN_EXAMPLE = "q3Jd9Zb2x7Vw1Lk8Tn4Rs6Pm0Hc5Fg2Ae9Yu3Oi7Ek1"


def _examples(*examples: JsonDict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class UserRegister(StrictModel):
    model_config = _examples(
        {"name": "Ada Lovelace", "email": "ada@example.com", "password": "correct horse battery"}
    )

    name: Name
    email: NewEmail
    password: NewPassword


class UserLogin(StrictModel):
    model_config = _examples({"email": "ada@example.com", "password": "correct horse battery"})

    email: LoginEmail
    password: Password


class RefreshTokenRequest(StrictModel):
    model_config = _examples({"refresh_token": _REFRESH_TOKEN_EXAMPLE})

    refresh_token: OpaqueToken


class UserRoleUpdate(StrictModel):
    model_config = _examples({"role": "ADMIN"})

    role: Role


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_USER_EXAMPLE]})

    id: uuid.UUID
    name: str
    email: str
    role: Role
    created_at: UtcTimestamp


class UserPage(BaseModel):
    model_config = _examples({"items": [_USER_EXAMPLE], "next_cursor": None})

    items: list[UserPublic]
    next_cursor: str | None


class TokenPair(BaseModel):
    model_config = _examples(
        {
            "access_token": _ACCESS_TOKEN_EXAMPLE,
            "token_type": "Bearer",
            "expires_in": 900,
            "refresh_token": _REFRESH_TOKEN_EXAMPLE,
            "token": _ACCESS_TOKEN_EXAMPLE,
        }
    )

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
    model_config = _examples(
        {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                    "kid": "2025-01-31",
                    "alg": "EdDSA",
                    "use": "sig",
                }
            ]
        }
    )

    keys: list[Jwk]
