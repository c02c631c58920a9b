"""Hostile login and register bodies: read as the gateway reads them, sized before any
normalisation, and their passwords normalised and hashed off the event loop."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from auth_service import passwords
from shop_common.emails import body_email
from shop_common.testing import random_email

pytestmark = pytest.mark.anyio

MEGABYTE = 1_000_000
JSON = {"content-type": "application/json"}


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False)


@pytest.mark.parametrize(
    "spell",
    [
        pytest.param(lambda doc: b"\xef\xbb\xbf" + _json(doc).encode(), id="utf-8-bom"),
        pytest.param(lambda doc: _json(doc).encode("utf-16-le"), id="utf-16-le"),
        pytest.param(lambda doc: _json(doc).encode("utf-16-be"), id="utf-16-be"),
        pytest.param(lambda doc: _json(doc).encode("utf-32"), id="utf-32"),
        pytest.param(
            lambda doc: _json({**doc, "email": doc["email"].replace("@e", "@ｅ", 1)}).encode(),
            id="full-width-domain-letter",
        ),
        pytest.param(
            lambda doc: _json({**doc, "email": doc["email"].upper()}).encode("utf-16"),
            id="upper-case-utf-16",
        ),
    ],
)
async def test_the_account_a_login_reaches_is_the_one_the_gateway_counts(api, spell):
    # The gateway keys its per-email limit on body_email(raw): the service must log the
    # very same account in from the very same bytes.
    email = random_email()  # ...@example.com
    user = await api.register(email=email)
    raw = spell({"email": email, "password": api.PASSWORD})
    response = await api.client.post("/auth/login", content=raw, headers=JSON)
    assert response.status_code == 200, response.text
    assert body_email(raw) == user["email"]


@pytest.mark.parametrize(
    ("path", "field", "body"),
    [
        pytest.param(
            "/auth/login",
            "email",
            {"email": "a@" + "b" * MEGABYTE + ".com", "password": "x"},
            id="login-1mb-email",
        ),
        pytest.param(
            "/auth/login",
            "password",
            {"email": "a@example.com", "password": "p" * MEGABYTE},
            id="login-1mb-password",
        ),
        pytest.param(
            "/auth/login",
            "password",
            {"email": "a@example.com", "password": "\ufdfa" * 100_000},
            id="login-password-of-widest-expansions",
        ),
        pytest.param(
            "/auth/register",
            "password",
            {"name": "N", "email": "a@example.com", "password": "p" * MEGABYTE},
            id="register-1mb-password",
        ),
        pytest.param(
            "/auth/register",
            "name",
            {"name": "\x00" * 150_000, "email": "a@example.com", "password": "p" * 10},
            id="register-1mb-name",
        ),
    ],
)
async def test_megabyte_fields_are_refused_by_size(api, path, field, body):
    response = await api.client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_a_password_at_the_raw_cap_that_nfkc_keeps_short_registers_and_logs_in(api):
    # 7 x U+FDFA is 126 characters after NFKC; sent as its NFKC form it logs in too.
    password = "\ufdfa" * 7
    user = await api.register(password=password)
    await api.login(user["email"], password)
    await api.login(user["email"], passwords.normalize(password))


async def test_a_password_too_long_after_nfkc_is_422_before_the_email_limit(api):
    # Names the caller; the client mints the credential for this very request.
    limited = api.gateway.headers("auth-service", email_retry_after=30)
    body = {"name": "N", "email": random_email(), "password": "\ufb03" * 43}  # 129 after NFKC
    response = await api.client.post("/auth/register", json=body, headers=limited)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "password", "message": "must be 8 to 128 characters long"}
    ]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/auth/refresh", 401, id="refresh"),
        pytest.param("/auth/logout", 204, id="logout"),
    ],
)
async def test_a_megabyte_refresh_token_is_just_unknown(api, path, status):
    response = await api.client.post(path, json={"refresh_token": "r" * MEGABYTE})
    assert response.status_code == status


async def test_password_normalisation_never_runs_on_the_event_loop(api, monkeypatch):
    loop_thread = threading.get_ident()
    threads: list[bool] = []
    normalize = passwords.normalize

    def watched(password: str) -> str:
        threads.append(threading.get_ident() == loop_thread)
        return normalize(password)

    monkeypatch.setattr(passwords, "normalize", watched)
    user = await api.register(password="ｐａｓｓｗｏｒｄ-" + "x" * 100)
    await api.login(user["email"], "password-" + "x" * 100)
    wrong = {"email": user["email"], "password": "wrong password"}
    assert (await api.client.post("/auth/login", json=wrong)).status_code == 401
    unknown = {"email": random_email(), "password": "wrong password"}
    assert (await api.client.post("/auth/login", json=unknown)).status_code == 401
    # register: the 8-128 rule and the hash; each login: one check.
    assert len(threads) >= 5
    assert not any(threads)
