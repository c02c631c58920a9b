from typing import Any

import pytest
from pydantic import ValidationError

from auth_service import passwords
from auth_service.schemas import (
    MAX_REFRESH_TOKEN_LENGTH,
    RefreshTokenRequest,
    UserLogin,
    UserRegister,
)
from shop_common.emails import canonical_email


def register(**fields: Any) -> UserRegister:
    body = {"name": "Ada", "email": "ada@example.com", "password": "password12"} | fields
    return UserRegister.model_validate(body)


def test_name_and_email_are_trimmed_and_email_lower_cased():
    user = register(name="  Ada  ", email="  Ada.Lovelace@Example.COM ")
    assert (user.name, user.email) == ("Ada", "ada.lovelace@example.com")


def test_password_is_kept_as_sent_for_the_hashing_thread_to_normalise():
    # NFKC and the 8-128 rule run in a thread (passwords.new_password_problem).
    assert register(password="ｐａｓｓｗｏｒｄ１２").password == "ｐａｓｓｗｏｒｄ１２"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"name": "   "}, "name", id="blank name"),
        pytest.param({"name": "a" * 101}, "name", id="name of 101"),
        pytest.param({"name": "a\u0085b"}, "name", id="C1 control in name"),
        pytest.param({"name": "a\ud800"}, "name", id="lone surrogate in name"),
        pytest.param({"email": "not-an-email"}, "email", id="no at sign"),
        pytest.param({"email": "a@b\x00.com"}, "email", id="NUL in email"),
        pytest.param(
            {"email": "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".com"},
            "email",
            id="email over 254",
        ),
        pytest.param({"name": " " + "a" * 101 + "\x00"}, "name", id="name over 100 with NUL"),
        pytest.param({"email": "a@" + "b" * 1_000_000 + ".com"}, "email", id="1 MB email"),
        pytest.param(
            {"password": "a" * (passwords.MAX_RAW_LENGTH + 1)}, "password", id="over the raw cap"
        ),
        pytest.param({"password": "\ud800" * 8}, "password", id="surrogate password"),
        pytest.param({"role": "ADMIN"}, "role", id="role"),
    ],
)
def test_invalid_registrations_name_the_field(fields, field):
    with pytest.raises(ValidationError) as caught:
        register(**fields)
    assert [error["loc"][0] for error in caught.value.errors()] == [field]


def test_name_of_100_characters_after_trimming_is_accepted():
    assert register(name=" " + "a" * 100 + " ").name == "a" * 100


def test_login_email_is_canonicalised_even_when_not_an_address():
    assert UserLogin(email=" ADA@Example.com ", password="x").email == "ada@example.com"
    assert canonical_email(" Not An Address ") == "not an address"


def test_a_password_at_the_raw_cap_is_left_to_the_nfkc_rule():
    at_cap = "a" * passwords.MAX_RAW_LENGTH
    assert register(password=at_cap).password == at_cap


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"email": "a@" + "b" * 1_000_000 + ".com"}, id="1 MB email"),
        pytest.param({"password": "p" * 1_000_000}, id="1 MB password"),
        pytest.param({"email": "\x00" * 1_000_000}, id="1 MB of NUL as email"),
    ],
)
def test_oversized_login_fields_are_refused_by_size_alone(fields):
    body = {"email": "ada@example.com", "password": "password12"} | fields
    with pytest.raises(ValidationError) as caught:
        UserLogin.model_validate(body)
    (error,) = caught.value.errors()
    assert error["msg"].endswith("characters long")


def test_login_email_padded_with_whitespace_is_measured_trimmed():
    padded = " " * 10_000 + "Ada@Example.com" + " " * 10_000
    assert UserLogin(email=padded, password="x").email == "ada@example.com"


@pytest.mark.parametrize(
    ("token", "kept"),
    [
        pytest.param("t" * MAX_REFRESH_TOKEN_LENGTH, "t" * MAX_REFRESH_TOKEN_LENGTH, id="at cap"),
        pytest.param("t" * (MAX_REFRESH_TOKEN_LENGTH + 1), "", id="over cap: unknown"),
    ],
)
def test_an_overlong_refresh_token_becomes_an_unknown_one(token, kept):
    assert RefreshTokenRequest(refresh_token=token).refresh_token == kept


def test_an_overlong_refresh_token_still_meets_the_control_character_rule():
    with pytest.raises(ValidationError):
        RefreshTokenRequest(refresh_token="t" * 5000 + "\x00")
