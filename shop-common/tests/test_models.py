"""The contract's string rules: trimming, and control characters refused wherever they are."""

from __future__ import annotations

import re
import uuid

import pytest
from pydantic import ValidationError

from shop_common.models import (
    NO_CONTROL_BUT_WHITESPACE_PATTERN,
    NO_CONTROL_PATTERN,
    LongText,
    StrictModel,
    TrimmedText,
    canonical_uuid,
    trimmed_text_pattern,
)

NAME_PATTERN = trimmed_text_pattern(10)


class Named(StrictModel):
    name: TrimmedText


class Described(StrictModel):
    description: LongText


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        pytest.param("  Desk lamp  ", "Desk lamp", id="spaces"),
        pytest.param("\u00a0Desk\u3000", "Desk", id="unicode-spaces"),
    ],
)
def test_whitespace_around_trimmed_text_is_removed(given: str, kept: str) -> None:
    assert Named(name=given).name == kept


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("Desk\n", id="trailing-newline"),
        pytest.param("\tDesk", id="leading-tab"),
        pytest.param("\x1cDesk", id="leading-separator"),
        pytest.param("Desk\x85", id="trailing-c1"),
        pytest.param("De\x00sk", id="inner-nul"),
    ],
)
def test_a_control_character_is_refused_even_at_the_edges(given: str) -> None:
    with pytest.raises(ValidationError):
        Named(name=given)
    assert not re.fullmatch(NO_CONTROL_PATTERN, given)
    assert not re.fullmatch(NAME_PATTERN, given)


def test_long_text_keeps_tab_cr_lf_and_refuses_other_controls() -> None:
    assert Described(description=" a\tb\r\nc ").description == " a\tb\r\nc "
    assert re.fullmatch(NO_CONTROL_BUT_WHITESPACE_PATTERN, " a\tb\r\nc ")
    with pytest.raises(ValidationError):
        Described(description="a\x0bb")
    assert not re.fullmatch(NO_CONTROL_BUT_WHITESPACE_PATTERN, "a\x0bb")


@pytest.mark.parametrize(
    "text",
    [
        "   ",
        "",
        "\u3000",
        " a ",
        "é",
        "  ten chars   ",
        "eleven char",
        " eleven char ",
        "a" * 10,
        "\u00a0" + "b" * 10 + " ",
        "a\u00a0b",
        "\u2028\u3000",
        "\u200bzero-width",
    ],
)
def test_the_trimmed_pattern_agrees_with_trimming_and_its_length(text: str) -> None:
    kept = text.strip()
    expected = 1 <= len(kept) <= 10
    assert (re.fullmatch(NAME_PATTERN, text) is not None) is expected
    # Read as the fuzzer reads it too (ASCII \s): the pattern does not depend on it.
    assert (re.fullmatch(NAME_PATTERN, text, re.ASCII) is not None) is expected


ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        pytest.param(str(ID), ID, id="canonical"),
        pytest.param(str(ID).upper(), ID, id="upper-case"),
        pytest.param(ID.hex, None, id="no-hyphens"),
        pytest.param("{" + str(ID) + "}", None, id="braces"),
        pytest.param(ID.urn, None, id="urn"),
        pytest.param(str(ID) + "\n", None, id="trailing-newline"),
        pytest.param("12345678-1234-5678-1234-56781234567g", None, id="not-hex"),
        pytest.param("", None, id="empty"),
    ],
)
def test_an_id_is_a_uuid_only_in_its_hyphenated_form(text: str, found: uuid.UUID | None) -> None:
    assert canonical_uuid(text) == found
