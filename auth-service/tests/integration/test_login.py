import time
import uuid

import jwt
import pytest

from shop_common.testing import random_email

pytestmark = pytest.mark.anyio


async def test_login_returns_the_tokens_object_and_no_store(api):
    user = await api.register()
    response = await api.client.post(
        "/auth/login", json={"email": user["email"], "password": api.PASSWORD}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token", "token"}
    assert tokens["token_type"] == "Bearer"
    assert tokens["token"] == tokens["access_token"]
    assert 0 < tokens["expires_in"] <= 900
    assert tokens["refresh_token"] != tokens["access_token"]


async def test_access_token_claims_and_kid_match_the_jwks(api):
    user, tokens = await api.new_user()
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "EdDSA"
    jwks = (await api.client.get("/auth/jwks.json")).json()
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    claims = jwt.decode(
        tokens["access_token"],
        key.key,
        algorithms=["EdDSA"],
        audience="shop-api",
        issuer="shop-auth",
    )
    assert set(claims) == {"sub", "role", "sid", "iss", "aud", "iat", "exp", "jti"}
    assert (claims["sub"], claims["role"]) == (user["id"], "USER")
    assert uuid.UUID(claims["sid"]) and uuid.UUID(claims["jti"])
    assert 0 < claims["exp"] - claims["iat"] <= 900
    assert abs(claims["iat"] - time.time()) < 60


async def test_each_login_is_its_own_session(api):
    user = await api.register()
    first, second = await api.login(user["email"]), await api.login(user["email"])
    sid = [
        jwt.decode(t["access_token"], options={"verify_signature": False})["sid"]
        for t in (first, second)
    ]
    assert sid[0] != sid[1]
    assert first["refresh_token"] != second["refresh_token"]


async def test_unknown_email_and_wrong_password_get_the_same_401(api):
    user = await api.register()
    same_request_id = {"x-request-id": "enumeration-probe"}
    wrong_password = await api.client.post(
        "/auth/login",
        json={"email": user["email"], "password": "wrong password"},
        headers=same_request_id,
    )
    unknown_email = await api.client.post(
        "/auth/login",
        json={"email": random_email(), "password": "wrong password"},
        headers=same_request_id,
    )
    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
    assert wrong_password.content == unknown_email.content


async def test_login_email_is_trimmed_and_case_insensitive(api):
    user = await api.register()
    await api.login(f"  {user['email'].upper()}  ")


@pytest.mark.parametrize(
    ("registered", "typed"),
    [
        pytest.param("ｐａｓｓｗｏｒｄ１２", "password12", id="full-width registered, ASCII typed"),
        pytest.param("password12", "ｐａｓｓｗｏｒｄ１２", id="ASCII registered, full-width typed"),
        pytest.param("e\u0301te\u0301-passe", "\u00e9t\u00e9-passe", id="decomposed and composed"),
    ],
)
async def test_passwords_compare_after_nfkc(api, registered, typed):
    user = await api.register(password=registered)
    await api.login(user["email"], typed)


async def test_a_long_password_whose_tail_differs_fails(api):
    head = "ü" * 50  # 100 bytes of UTF-8, past bcrypt's 72
    user = await api.register(password=head + "right")
    response = await api.client.post(
        "/auth/login", json={"email": user["email"], "password": head + "wrong"}
    )
    assert response.status_code == 401
    await api.login(user["email"], head + "right")


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        pytest.param({"email": "a@example.com"}, "password", id="no password"),
        pytest.param({"password": "password12"}, "email", id="no email"),
        pytest.param(
            {"email": "a@example.com", "password": "x", "role": "ADMIN"}, "role", id="extra field"
        ),
        pytest.param({"email": 1, "password": "password12"}, "email", id="email not a string"),
        pytest.param(
            {"email": "a\x00@example.com", "password": "password12"}, "email", id="NUL in email"
        ),
    ],
)
async def test_login_with_an_invalid_body_returns_422(api, sent, field):
    response = await api.client.post("/auth/login", json=sent)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_login_with_a_non_json_body_returns_415(api):
    response = await api.client.post(
        "/auth/login",
        content=b"email=a",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415


async def test_login_with_malformed_json_returns_400(api):
    response = await api.client.post(
        "/auth/login", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


async def test_failed_login_is_logged_as_a_security_event_without_secrets(api, caplog):
    user = await api.register()
    await api.client.post(
        "/auth/login", json={"email": user["email"], "password": "wrong-secret-pw"}
    )
    events = [r for r in caplog.records if getattr(r, "security_event", None) == "login_failed"]
    assert len(events) == 1
    assert "wrong-secret-pw" not in str(events[0].__dict__)
