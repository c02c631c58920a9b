from typing import Any

import pytest
from pydantic import ValidationError

from auth_service.schemas import UserLogin, UserRegister, canonical_email


def register(**fields: Any) -> UserRegister:
    body = {"name": "Ada", "email": "ada@example.com", "password": "password12"} | fields
    return UserRegister.model_validate(body)


def test_name_and_email_are_trimmed_and_email_lower_cased():
    user = register(name="  Ada  ", email="  Ada.Lovelace@Example.COM ")
    assert (user.name, user.email) == ("Ada", "ada.lovelace@example.com")


def test_password_is_nfkc_normalised():
    assert register(password="ｐａｓｓｗｏｒｄ１２").password == "password12"


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
        pytest.param({"password": "short"}, "password", id="short password"),
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
