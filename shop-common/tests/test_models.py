"""The contract's string rules: trimming, and control characters refused wherever they are."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from shop_common.models import (
    NO_CONTROL_BUT_WHITESPACE_PATTERN,
    NO_CONTROL_PATTERN,
    NOT_BLANK_PATTERN,
    LongText,
    StrictModel,
    TrimmedText,
)


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
    assert not re.fullmatch(NOT_BLANK_PATTERN, given)


def test_long_text_keeps_tab_cr_lf_and_refuses_other_controls() -> None:
    assert Described(description=" a\tb\r\nc ").description == " a\tb\r\nc "
    assert re.fullmatch(NO_CONTROL_BUT_WHITESPACE_PATTERN, " a\tb\r\nc ")
    with pytest.raises(ValidationError):
        Described(description="a\x0bb")
    assert not re.fullmatch(NO_CONTROL_BUT_WHITESPACE_PATTERN, "a\x0bb")


@pytest.mark.parametrize(
    ("text", "blank"),
    [("   ", True), ("", True), ("\u3000", True), (" a ", False), ("é", False)],
)
def test_the_not_blank_pattern_matches_what_trimming_keeps(text: str, blank: bool) -> None:
    assert (re.fullmatch(NOT_BLANK_PATTERN, text) is None) is blank
    assert (not text.strip()) is blank
