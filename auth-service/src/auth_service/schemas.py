"""Request and response bodies of the auth API."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic.config import JsonDict

from auth_service import passwords
from shop_common.emails import MAX_EMAIL_LENGTH, canonical_email, registrable_email
from shop_common.models import PlainText, StrictModel, TrimmedText, trimmed_text_pattern

MAX_NAME_LENGTH = 100
# Refresh tokens we issue are 43 characters; a longer string than this cannot be one.
MAX_REFRESH_TOKEN_LENGTH = 1024


def _at_most(limit: int, *, trimmed: bool = False) -> BeforeValidator:
    """A size cap checked before anything else looks at the text (control characters,
    NFKC, IDNA): a 1 MB field costs a len(), not a walk through every character."""

    def check(value: object) -> object:
        if isinstance(value, str) and len(value.strip() if trimmed else value) > limit:
            raise ValueError(f"must be at most {limit} characters long")
        return value

    return BeforeValidator(check)


def _no_token_when_too_long(value: str) -> str:
    # A refresh token longer than any we issue is unknown, like any other: 401 from
    # /refresh, 204 from /logout (the contract), found so without hashing a megabyte.
    # After the C-speed checks for control characters and valid Unicode, which a body
    # field must pass at any length.
    return "" if len(value) > MAX_REFRESH_TOKEN_LENGTH else value


def _valid_unicode(value: str) -> str:
    # Lone surrogates survive JSON decoding but are not text: no database or encoder
    # takes them, so they are a validation error here rather than a 500 later. The UTF-8
    # encoder finds them at C speed (a loop over the characters took 70 ms per MB).
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def _length_between(low: int, high: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not low <= len(value) <= high:
            raise ValueError(f"must be {low} to {high} characters long")
        return value

    return check


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


Name = Annotated[
    TrimmedText,
    _at_most(MAX_NAME_LENGTH, trimmed=True),
    AfterValidator(_valid_unicode),
    AfterValidator(_length_between(1, MAX_NAME_LENGTH)),
    Field(
        json_schema_extra={"minLength": 1, "pattern": trimmed_text_pattern(MAX_NAME_LENGTH)},
        description=f"1 to {MAX_NAME_LENGTH} characters after trimming; no control characters",
    ),
]
# Emails: the same normalisation as the gateway's per-email limits (shop_common.emails).
NewEmail = Annotated[
    TrimmedText,
    _at_most(MAX_EMAIL_LENGTH, trimmed=True),
    AfterValidator(_valid_unicode),
    AfterValidator(registrable_email),
    Field(json_schema_extra={"format": "email", "maxLength": MAX_EMAIL_LENGTH}),
]
LoginEmail = Annotated[
    TrimmedText,
    _at_most(MAX_EMAIL_LENGTH, trimmed=True),
    AfterValidator(_valid_unicode),
    AfterValidator(canonical_email),
    Field(json_schema_extra={"maxLength": MAX_EMAIL_LENGTH}),
]
# Passwords keep any character, control characters included. Here only the raw cap and
# valid Unicode are checked: NFKC, the 8-128 rule on its result and the hashing run in a
# thread (passwords.py), since they cost time in proportion to the length.
_PASSWORD_SCHEMA: JsonDict = {"minLength": 1, "maxLength": passwords.MAX_RAW_LENGTH}
NewPassword = Annotated[
    str,
    _at_most(passwords.MAX_RAW_LENGTH),
    AfterValidator(_valid_unicode),
    # Not minLength 8 / maxLength 128: those count the text as sent, and NFKC can lengthen
    # it ("\ufdfa" is 18 characters) or shorten it (a decomposed "e\u0301" is one).
    Field(
        json_schema_extra=_PASSWORD_SCHEMA,
        description=f"{passwords.MIN_LENGTH} to {passwords.MAX_LENGTH} characters after NFKC "
        "normalisation; any Unicode",
    ),
]
Password = Annotated[
    str,
    _at_most(passwords.MAX_RAW_LENGTH),
    AfterValidator(_valid_unicode),
    Field(json_schema_extra=_PASSWORD_SCHEMA),
]
OpaqueToken = Annotated[
    PlainText, AfterValidator(_valid_unicode), AfterValidator(_no_token_when_too_long)
]
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
