"""The strict base for request bodies and the string rules of the contract."""

from __future__ import annotations

import re
import uuid
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

ALLOWED_IN_LONG_TEXT = frozenset("\t\r\n")
# The same rules as JSON Schema patterns (ECMA-262 syntax, which Python's re and the
# fuzzers' engines read alike), so that clients and fuzzers know what is refused.
_CONTROL = r"\u0000-\u001f\u007f-\u009f"  # Unicode category Cc
NO_CONTROL_PATTERN = rf"^[^{_CONTROL}]*$"
NO_CONTROL_BUT_WHITESPACE_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"


_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def canonical_uuid(text: str) -> uuid.UUID | None:
    """`text` as a UUID when it is one in the hyphenated 8-4-4-4-12 form, else None.

    An id in a path is that form only: uuid.UUID alone would also take braces, a `urn:uuid:`
    prefix or no hyphens, and so answer one resource at several paths.
    """
    return uuid.UUID(text) if _CANONICAL_UUID.fullmatch(text) else None


# What str.strip() removes that is not a control character, spelled out: regex engines
# disagree about \s (ASCII-only in some fuzzers, Unicode in Python and Rust).
_SPACE = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def trimmed_text_pattern(max_length: int) -> str:
    """TrimmedText of 1 to max_length characters once trimmed, as one exact pattern.

    maxLength would count the untrimmed text, which the service does not do (a
    `minLength: 1` beside it is true, and some fuzzers need it).
    """
    if max_length < 2:
        raise ValueError("max_length must be at least 2")
    edge = f"[{_SPACE}]*"
    solid = f"[^{_SPACE}{_CONTROL}]"
    inner = f"[^{_CONTROL}]"
    return f"^{edge}{solid}(?:{inner}{{0,{max_length - 2}}}{solid})?{edge}$"


class StrictModel(BaseModel):
    """Request bodies: unknown fields are a 422, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


# Category Cc is exactly U+0000-U+001F and U+007F-U+009F (and stays so: Unicode's
# stability policy fixes the Cc set), so one regex finds one at C speed: the loop over
# characters it replaces spent 70 ms of the event loop on a 1 MB field.
_CONTROL_CHARACTERS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]


@lru_cache(maxsize=8)
def _control_character_pattern(allowed: frozenset[str]) -> re.Pattern[str]:
    refused = "".join(re.escape(ch) for ch in _CONTROL_CHARACTERS if ch not in allowed)
    return re.compile(f"[{refused}]")


def has_control_character(value: str, allowed: frozenset[str] = frozenset()) -> bool:
    return _control_character_pattern(allowed).search(value) is not None


def _no_control_characters(value: str) -> str:
    if has_control_character(value):
        raise ValueError("must not contain control characters")
    return value


def _no_control_characters_but_whitespace(value: str) -> str:
    if has_control_character(value, ALLOWED_IN_LONG_TEXT):
        raise ValueError("must not contain control characters other than tab, CR and LF")
    return value


def _trimmed(value: str) -> str:
    return value.strip()


# Trimmed single-line text (names, emails). Validators run in order: the control
# characters are checked before trimming, so "name\n" is refused (the contract: a control
# character in any body field gets 422), never trimmed into "name".
TrimmedText = Annotated[
    str,
    AfterValidator(_no_control_characters),
    AfterValidator(_trimmed),
    Field(json_schema_extra={"pattern": NO_CONTROL_PATTERN}),
]
# Plain text that keeps its whitespace.
PlainText = Annotated[
    str,
    AfterValidator(_no_control_characters),
    Field(json_schema_extra={"pattern": NO_CONTROL_PATTERN}),
]
# Multi-line text (descriptions): tab, CR and LF allowed.
LongText = Annotated[
    str,
    AfterValidator(_no_control_characters_but_whitespace),
    Field(json_schema_extra={"pattern": NO_CONTROL_BUT_WHITESPACE_PATTERN}),
]
