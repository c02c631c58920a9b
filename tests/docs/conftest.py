"""One running system for the API documentation tests: the served document, the
generated client, the fuzzer and the browser all talk to it.

Rate limits are generous here (the fuzzer sends thousands of requests from one address,
and registers many accounts); the limits themselves are tested elsewhere.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from testsupport.system import System, start_system, stop_system

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery"
GENEROUS_LIMITS = {
    "RATE_LIMIT_PER_ADDRESS": "100000 per minute",
    "RATE_LIMIT_LOGIN_PER_ADDRESS": "100000 per minute",
    "RATE_LIMIT_REGISTER_PER_ADDRESS": "100000 per hour",
}


@dataclass
class User:
    email: str
    token: str
    profile: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Docs:
    system: System

    @property
    def url(self) -> str:
        return self.system.gateway

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=15)

    def document(self) -> dict[str, Any]:
        with self.client() as client:
            response = client.get("/api-docs/openapi.json")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    def new_user(self) -> User:
        """A freshly registered USER, logged in."""
        email = f"docs-{secrets.token_hex(6)}@example.com"
        with self.client() as client:
            created = client.post(
                "/auth/register", json={"name": "Docs Reader", "email": email, "password": PASSWORD}
            )
            assert created.status_code == 201, created.text
            login = client.post("/auth/login", json={"email": email, "password": PASSWORD})
            assert login.status_code == 200, login.text
        return User(email=email, token=login.json()["access_token"], profile=created.json())


@pytest.fixture(scope="session")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docs]:

    system = start_system(tmp_path_factory.mktemp("docs-system"), **GENEROUS_LIMITS)
    try:
        yield Docs(system)
    finally:
        stop_system(system)


@pytest.fixture(scope="session")
def document(docs: Docs) -> dict[str, Any]:
    return docs.document()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ at the repository root (git-ignored; CI keeps it)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
