"""Broken authentication (API2): telling accounts apart from the outside, and passwords
whose difference lies past bcrypt's 72-byte input limit."""

from __future__ import annotations

import httpx
import pytest

from tests.security.support import problem_without_request_id, random_email, register

pytestmark = pytest.mark.e2e


def test_enumeration_unknown_email_and_wrong_password_look_the_same(
    gateway: httpx.Client,
) -> None:
    account = register(gateway)
    wrong_password = gateway.post(
        "/auth/login", json={"email": account.email, "password": "not the password"}
    )
    unknown_email = gateway.post(
        "/auth/login", json={"email": random_email(), "password": "not the password"}
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert problem_without_request_id(wrong_password) == problem_without_request_id(unknown_email)
    ignored = {"x-request-id", "date", "content-length"}
    for name in set(wrong_password.headers) | set(unknown_email.headers):
        if name not in ignored:
            assert wrong_password.headers.get(name) == unknown_email.headers.get(name), name
    assert wrong_password.content.replace(
        wrong_password.json()["request_id"].encode(), b""
    ) == unknown_email.content.replace(unknown_email.json()["request_id"].encode(), b"")


def test_enumeration_email_case_and_spaces_do_not_tell_accounts_apart(
    gateway: httpx.Client,
) -> None:
    account = register(gateway)
    variant = f"  {account.email.upper()} "
    wrong = gateway.post("/auth/login", json={"email": variant, "password": "not the password"})
    right = gateway.post("/auth/login", json={"email": variant, "password": account.password})
    assert wrong.status_code == 401
    assert right.status_code == 200, right.text


@pytest.mark.parametrize(
    ("prefix", "tail", "other_tail"),
    [
        pytest.param("a" * 72, "tail-one", "tail-two", id="ascii-72-bytes"),
        pytest.param("é" * 36, "1", "2", id="two-byte-chars-72-bytes"),
        pytest.param("🔑" * 18, "🔒", "🔓", id="four-byte-chars-72-bytes"),
        pytest.param("x" * 100, "A", "B", id="difference-at-character-101"),
    ],
)
def test_long_password_tail_past_72_bytes_matters(
    gateway: httpx.Client, prefix: str, tail: str, other_tail: str
) -> None:
    password = prefix + tail
    assert len(password.encode()) > 72
    account = register(gateway, password=password)
    near_miss = gateway.post(
        "/auth/login", json={"email": account.email, "password": prefix + other_tail}
    )
    assert near_miss.status_code == 401, near_miss.text
    cut = gateway.post("/auth/login", json={"email": account.email, "password": prefix})
    assert cut.status_code == 401, cut.text
    exact = gateway.post("/auth/login", json={"email": account.email, "password": password})
    assert exact.status_code == 200, exact.text


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("short", id="too-short"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param("ｘ" * 7, id="full-width-too-short"),
    ],
)
def test_weak_or_oversized_passwords_are_refused(gateway: httpx.Client, password: str) -> None:
    response = gateway.post(
        "/auth/register",
        json={"name": "Mallory", "email": random_email(), "password": password},
    )
    assert response.status_code == 422, response.text
    assert password not in response.text
