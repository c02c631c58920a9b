from __future__ import annotations

import uuid

import pytest

from shop_common.etags import entity_tag as product_etag
from shop_common.etags import parse_condition

PRODUCT = uuid.UUID("12345678-1234-5678-1234-567812345678")
CURRENT = product_etag(PRODUCT, 3)
OPAQUE = CURRENT.strip('"')


def test_the_tag_is_strong_and_changes_with_the_version_and_the_product() -> None:
    assert CURRENT.startswith('"') and CURRENT.endswith('"')
    assert product_etag(PRODUCT, 4) != CURRENT
    assert product_etag(uuid.uuid4(), 3) != CURRENT


def test_an_absent_header_is_no_condition() -> None:
    assert parse_condition([]) is None


@pytest.mark.parametrize(
    ("lines", "strong", "weak"),
    [
        pytest.param([CURRENT], True, True, id="same-tag"),
        pytest.param([f"W/{CURRENT}"], False, True, id="weak-form"),
        pytest.param(["*"], True, True, id="star"),
        pytest.param([' "other", ' + CURRENT], True, True, id="list"),
        pytest.param(['"other"', CURRENT], True, True, id="several-lines"),
        pytest.param([f'"other",,{CURRENT} ,'], True, True, id="empty-elements"),
        pytest.param(['"other"'], False, False, id="other-tag"),
        pytest.param([product_etag(PRODUCT, 2)], False, False, id="stale"),
        pytest.param([OPAQUE], False, False, id="unquoted"),
        pytest.param([f"{CURRENT} junk"], False, False, id="malformed"),
        pytest.param([""], False, False, id="empty"),
        pytest.param(['"a,b"', CURRENT], True, True, id="comma-inside-tag"),
        pytest.param(["*, " + CURRENT], False, False, id="star-in-a-list-is-malformed"),
    ],
)
def test_matches_as_rfc_9110_says(lines: list[str], strong: bool, weak: bool) -> None:
    condition = parse_condition(lines)
    assert condition is not None
    assert condition.matches_strongly(CURRENT) is strong
    assert condition.matches_weakly(CURRENT) is weak
