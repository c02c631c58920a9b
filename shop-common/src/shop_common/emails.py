"""Email addresses as auth-service keeps them, and the account a JSON body names.

auth-service stores and looks up accounts with canonical_email; the gateway keys its
per-email limits with body_email, which reads the body with the services' own JSON
reader and then calls canonical_email. One decoding and one normalisation: a spelling
the service takes for an account always counts against that account's limit
(docs/decisions/one-parser.md).
"""

from __future__ import annotations

from typing import Any

from email_validator import EmailNotValidError, validate_email

from shop_common.json_body import loads_numbers_as_bytes

MAX_EMAIL_LENGTH = 254


def email_too_long(value: str) -> bool:
    """Longer than any address once trimmed: refused before any normalisation runs
    (email-validator spends ~0.3 s on a 1 MB string, on the event loop)."""
    return len(value.strip()) > MAX_EMAIL_LENGTH


def registrable_email(value: str) -> str:
    """The stored form of a new account's address; ValueError (for the client) when it
    is not a valid address."""
    if email_too_long(value):
        raise ValueError(f"must be at most {MAX_EMAIL_LENGTH} characters long")
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise ValueError("must be a valid email address") from None
    return checked.normalized.lower()


def canonical_email(value: str) -> str:
    """The account an address names: its stored form (email-validator's normalisation,
    UTS-46 for the domain, NFC for the local part, then lower case).

    Not an address anyone could have registered: looked up as typed (trimmed and
    lower-cased), it just fails to match.
    """
    if email_too_long(value):
        return value.strip().lower()
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return value.strip().lower()


def body_email(raw: bytes) -> str | None:
    """The account a login or register body names, read exactly as auth-service reads
    it; None when the service refuses such a body before it looks up any account (not
    JSON: 400; not an object or no string `email`, or an address too long: 422)."""
    try:
        document: Any = loads_numbers_as_bytes(raw)
    except (ValueError, RecursionError):
        return None
    email = document.get("email") if isinstance(document, dict) else None
    if not isinstance(email, str) or not email.strip() or email_too_long(email):
        return None
    return canonical_email(email)
