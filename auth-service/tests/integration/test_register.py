import json
import re
import uuid
from typing import Any

import pytest

from shop_common.testing import random_email

pytestmark = pytest.mark.anyio

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def body(**fields: Any) -> dict[str, Any]:
    return {"name": "Ada Lovelace", "email": random_email(), "password": "password12"} | fields


async def test_register_returns_201_with_the_user(api):
    email = random_email()
    response = await api.client.post(
        "/auth/register", json=body(name="  Ada  ", email=f"  {email.upper()} ")
    )
    assert response.status_code == 201
    user = response.json()
    assert set(user) == {"id", "name", "email", "role", "created_at"}
    assert uuid.UUID(user["id"])
    assert (user["name"], user["email"], user["role"]) == ("Ada", email, "USER")
    assert RFC3339_UTC.fullmatch(user["created_at"])


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(str, id="same email"),
        pytest.param(str.upper, id="upper case"),
        pytest.param(lambda email: f"  {email.title()}  ", id="mixed case with spaces"),
    ],
)
async def test_register_with_a_taken_email_returns_409(api, variant):
    email = random_email()
    await api.register(email=email)
    response = await api.client.post("/auth/register", json=body(email=variant(email)))
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 409


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"role": "ADMIN"}, "role", id="role ADMIN"),
        pytest.param({"role": "USER"}, "role", id="role USER"),
        pytest.param({"id": str(uuid.uuid4())}, "id", id="id"),
        pytest.param({"is_admin": True}, "is_admin", id="unknown field"),
        pytest.param({"name": ""}, "name", id="empty name"),
        pytest.param({"name": "   "}, "name", id="blank name"),
        pytest.param({"name": "a" * 101}, "name", id="name of 101"),
        pytest.param({"name": "Ada\nLovelace"}, "name", id="LF in name"),
        pytest.param({"name": "Ada\x7f"}, "name", id="DEL in name"),
        pytest.param({"name": 42}, "name", id="name not a string"),
        pytest.param({"name": None}, "name", id="name null"),
        pytest.param({"email": "no-at-sign"}, "email", id="invalid email"),
        pytest.param({"email": "a\t@example.com"}, "email", id="tab inside"),
        pytest.param({"email": "a\x00b@example.com"}, "email", id="NUL in email"),
        pytest.param({"email": "a" * 250 + "@example.com"}, "email", id="email over 254"),
        pytest.param({"email": ["a@example.com"]}, "email", id="email not a string"),
        pytest.param({"password": "seven77"}, "password", id="password of 7"),
        pytest.param({"password": "p" * 129}, "password", id="password of 129"),
        pytest.param({"password": "\ufb03" * 43}, "password", id="129 after NFKC"),
        pytest.param({"password": 12345678}, "password", id="password not a string"),
    ],
)
async def test_register_with_an_invalid_field_returns_422(api, fields, field):
    sent = body(**fields)
    response = await api.client.post("/auth/register", json=sent)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["status"] == 422
    assert field in [error["field"] for error in problem["errors"]]
    # Nothing was created: the same email registers fine afterwards.
    if isinstance(sent["email"], str) and field != "email":
        await api.register(email=sent["email"])


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"password": "\ud800" * 8}, id="password"),
        pytest.param({"name": "Ada \udfff"}, id="name"),
    ],
)
async def test_register_with_a_lone_surrogate_is_refused_and_creates_nothing(api, fields):
    # Not Unicode text, so nothing could store or hash it: malformed JSON (400) to the
    # shared body parser, or a validation failure (422) if a parser lets it through.
    sent = body(**fields)
    response = await api.client.post(
        "/auth/register", content=json.dumps(sent), headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422)
    await api.register(email=sent["email"])


@pytest.mark.parametrize(
    "missing", [pytest.param(name, id=name) for name in ("name", "email", "password")]
)
async def test_register_without_a_field_returns_422(api, missing):
    sent = body()
    del sent[missing]
    response = await api.client.post("/auth/register", json=sent)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [missing]


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("p" * 128, id="128 characters"),
        pytest.param("🔑" * 128, id="128 four-byte characters"),
        pytest.param("tab\there\x00nul\x7f", id="control characters"),
        pytest.param("  spaces kept  ", id="surrounding spaces"),
    ],
)
async def test_register_accepts_any_unicode_password(api, password):
    user = await api.register(password=password)
    await api.login(user["email"], password)


async def test_register_accepts_a_name_of_100_characters(api):
    user = await api.register(name="n" * 100)
    assert user["name"] == "n" * 100


async def test_register_role_field_creates_nothing(api):
    email = random_email()
    response = await api.client.post("/auth/register", json=body(email=email, role="ADMIN"))
    assert response.status_code == 422
    user = await api.register(email=email)
    assert user["role"] == "USER"


async def test_register_with_malformed_json_returns_400(api):
    response = await api.client.post(
        "/auth/register", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("text/plain", id="text"),
        pytest.param("application/x-www-form-urlencoded", id="form"),
        pytest.param(None, id="none"),
    ],
)
async def test_register_with_a_body_that_is_not_json_returns_415(api, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = await api.client.post("/auth/register", content=b'{"name": "a"}', headers=headers)
    assert response.status_code == 415


async def test_register_with_a_body_over_the_limit_returns_413(api):
    response = await api.client.post(
        "/auth/register",
        content=b'{"name": "' + b"a" * (1024 * 1024) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"[]", id="array"),
        pytest.param(b'"text"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_register_with_a_json_body_that_is_not_an_object_returns_422(api, sent):
    response = await api.client.post(
        "/auth/register", content=sent, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_register_answers_405_to_get_and_404_with_a_trailing_slash(api):
    wrong_method = await api.client.get("/auth/register")
    assert wrong_method.status_code == 405
    assert "POST" in wrong_method.headers["allow"]
    slash = await api.client.post("/auth/register/", json=body())
    assert slash.status_code == 404
