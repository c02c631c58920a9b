"""body_email: the account a login or register body names, as auth-service reads it."""

from __future__ import annotations

import json

import pytest

from shop_common.emails import MAX_EMAIL_LENGTH, body_email, canonical_email, registrable_email

TARGET = "ada@example.com"


def login_body(email: str) -> str:
    return json.dumps({"email": email, "password": "whatever it is"}, ensure_ascii=False)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(login_body(TARGET).encode(), id="utf-8"),
        pytest.param(b"\xef\xbb\xbf" + login_body(TARGET).encode(), id="utf-8-bom"),
        pytest.param(login_body(TARGET).encode("utf-16-le"), id="utf-16-le"),
        pytest.param(login_body(TARGET).encode("utf-16-be"), id="utf-16-be"),
        pytest.param(login_body(TARGET).encode("utf-16"), id="utf-16-bom"),
        pytest.param(login_body(TARGET).encode("utf-32-le"), id="utf-32-le"),
        pytest.param(login_body(TARGET).encode("utf-32-be"), id="utf-32-be"),
        pytest.param(login_body(TARGET).encode("utf-32"), id="utf-32-bom"),
        pytest.param(login_body("ada@ｅxample.com").encode(), id="full-width-letter"),
        pytest.param(login_body("ada@ＥＸＡＭＰＬＥ．ＣＯＭ").encode(), id="full-width-domain"),
        pytest.param(login_body("ada@example。com").encode(), id="ideographic-full-stop"),
        pytest.param(login_body("ADA@Example.COM").encode(), id="upper-case"),
        pytest.param(login_body("  ada@example.com\t").encode(), id="padded"),
        pytest.param(b'{"email": "ada@\\uff45xample.com"}', id="escaped-full-width"),
        pytest.param(b'{"email": "x@example.com", "email": "ada@example.com"}', id="last-wins"),
        pytest.param(
            b'{"email": "ada@example.com", "n": ' + b"7" * 5000 + b"}", id="5000-digit-number"
        ),
    ],
)
def test_every_spelling_auth_service_reads_names_the_same_account(raw: bytes) -> None:
    assert body_email(raw) == TARGET


@pytest.mark.parametrize(
    ("spelling", "stored"),
    [
        pytest.param("ada@xn--mnchen-3ya.de", "ada@münchen.de", id="punycode-domain"),
        pytest.param("ada@MÜNCHEN.DE", "ada@münchen.de", id="upper-case-unicode-domain"),
        pytest.param("Ada@München.de", "ada@münchen.de", id="unicode-domain"),
        pytest.param("ａｄａ@example.com", "ａｄａ@example.com", id="full-width-local-part-kept"),
        pytest.param("e\u0301@example.com", "\u00e9@example.com", id="local-part-nfc"),
    ],
)
def test_idna_and_unicode_spellings_normalise_as_registration_stores_them(
    spelling: str, stored: str
) -> None:
    assert canonical_email(spelling) == stored
    assert registrable_email(spelling) == stored
    assert body_email(login_body(spelling).encode("utf-16")) == stored


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'{"email": ', id="malformed"),
        pytest.param(b"\xff\xfe\x00", id="undecodable"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply-nested"),
        pytest.param(b'["ada@example.com"]', id="not-an-object"),
        pytest.param(b'{"email": 42}', id="not-a-string"),
        pytest.param(b'{"email": "   "}', id="blank"),
        pytest.param(b'{"password": "x"}', id="no-email"),
        pytest.param(b'{"email": NaN}', id="nan"),
        pytest.param(json.dumps({"email": "a@" + "b" * MAX_EMAIL_LENGTH}).encode(), id="over-254"),
    ],
)
def test_bodies_the_service_refuses_before_any_lookup_name_no_account(raw: bytes) -> None:
    assert body_email(raw) is None


def test_an_address_that_is_not_valid_is_looked_up_trimmed_and_lower_cased() -> None:
    assert canonical_email("  Not An Address ") == "not an address"
    assert body_email(b'{"email": " Not@Valid@Example.com "}') == "not@valid@example.com"


def test_254_characters_once_trimmed_is_the_limit() -> None:
    local = "a" * 64
    domain = ".".join(["b" * 61] * 3) + ".com"  # 189 characters
    address = f"{local}@{domain}"
    assert len(address) == MAX_EMAIL_LENGTH
    padded = " " * 500 + address + " " * 500
    assert canonical_email(padded) == address
    assert registrable_email(padded) == address
    with pytest.raises(ValueError, match="at most 254"):
        registrable_email("a" * 64 + "@" + "b" * 190 + ".com")


def test_a_megabyte_address_is_refused_by_its_length() -> None:
    huge = "a@" + "b" * 1_000_000 + ".com"
    with pytest.raises(ValueError, match="at most 254"):
        registrable_email(huge)
    assert canonical_email(huge) == huge.lower()  # looked up as typed: no account matches
