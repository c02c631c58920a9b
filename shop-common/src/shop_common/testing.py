"""Helpers the services' tests share: unique data, keys, credentials, databases."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from shop_common.credential import (
    CREDENTIAL_HEADER,
    Caller,
    CredentialSigner,
    RequestBinding,
    Role,
)
from shop_common.keys import private_pem, public_pem


def random_email() -> str:
    return f"user-{secrets.token_hex(6)}@example.com"


def random_sku() -> str:
    return f"SKU-{secrets.token_hex(6).upper()}"


# Test-only: names the caller of one request; GatewayKeys.auth() replaces it with a
# credential minted for that very request (method, path, query, X-Request-ID).
TEST_CALLER_HEADER = "x-test-caller"


@dataclass
class GatewayKeys:
    """A gateway key pair written under data_dir/keys/gateway, as make run does."""

    signer: CredentialSigner
    private_key: Ed25519PrivateKey

    def headers(
        self,
        audience: str,
        *,
        user_id: str | None = None,
        role: Role | None = None,
        session_id: str | None = None,
        email_retry_after: int | None = None,
        deadline_in: float | None = None,
    ) -> dict[str, str]:
        """Headers naming the caller; a client with `auth=keys.auth()` mints its credential
        (with a deadline `deadline_in` seconds after it is minted, if given)."""
        spec = {
            "aud": audience,
            "sub": user_id,
            "role": role if user_id else None,
            "sid": session_id,
            "era": email_retry_after,
            "dl": deadline_in,
        }
        return {TEST_CALLER_HEADER: json.dumps(spec)}

    def auth(self, default_audience: str | None = None) -> httpx.Auth:
        """Mints, per request, the credential its TEST_CALLER_HEADER asks for (or an
        anonymous one for `default_audience` when the request names no caller)."""
        return _MintPerRequest(self, default_audience)

    def sign(self, request: httpx.Request, default_audience: str | None = None) -> None:
        spec_text = request.headers.pop(TEST_CALLER_HEADER, None)
        spec: dict[str, Any]
        if spec_text is None:
            if default_audience is None or CREDENTIAL_HEADER in request.headers:
                return
            spec = {"aud": default_audience}
        else:
            spec = json.loads(spec_text)
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.headers["x-request-id"] = request_id
        caller = Caller(
            user_id=spec.get("sub"),
            role=spec.get("role"),
            session_id=spec.get("sid"),
            email_retry_after=spec.get("era"),
        )
        deadline_in = spec.get("dl")
        request.headers[CREDENTIAL_HEADER] = self.signer.mint(
            audience=spec["aud"],
            caller=caller,
            request=binding_of(request, request_id),
            deadline=None if deadline_in is None else time.time() + deadline_in,
        )


def binding_of(request: httpx.Request, request_id: str) -> RequestBinding:
    """What a server will read of this request: method, path as sent, query, request id."""
    path = request.url.raw_path.split(b"?")[0].decode("ascii")
    return RequestBinding(request.method, path, request.url.query, request_id)


class _MintPerRequest(httpx.Auth):
    def __init__(self, keys: GatewayKeys, default_audience: str | None) -> None:
        self._keys = keys
        self._default_audience = default_audience

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._keys.sign(request, self._default_audience)
        yield request


def write_gateway_keys(data_dir: Path) -> GatewayKeys:
    key = Ed25519PrivateKey.generate()
    directory = data_dir / "keys" / "gateway"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "private.pem").write_bytes(private_pem(key))
    (directory / "public.pem").write_bytes(public_pem(key.public_key()))
    return GatewayKeys(signer=CredentialSigner(key), private_key=key)


def write_credential_keys(data_dir: Path, minter: str) -> CredentialSigner:
    """A service's own credential key pair under data_dir/keys/<minter>, as make run does."""
    key = Ed25519PrivateKey.generate()
    directory = data_dir / "keys" / minter
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "private.pem").write_bytes(private_pem(key))
    (directory / "public.pem").write_bytes(public_pem(key.public_key()))
    return CredentialSigner(key, issuer=minter)


def server_url_or_skip(variable: str) -> str:
    """The real server a test needs; skipped when unset, a failure when CI must run it."""
    value = os.environ.get(variable)
    if value:
        return value
    if os.environ.get("CI"):
        pytest.fail(f"{variable} is not set: CI must run this test against the real server")
    pytest.skip(f"{variable} is not set")


def postgres_base_url() -> str:
    return server_url_or_skip("TEST_POSTGRES_URL")


def redis_url() -> str:
    return server_url_or_skip("TEST_REDIS_URL")


@asynccontextmanager
async def fresh_postgres_database(base_url: str) -> AsyncIterator[str]:
    """A new, empty database on the TEST_POSTGRES_URL server, dropped afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    admin = create_async_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


def sqlite_url(directory: Path, name: str = "test.db") -> str:
    return f"sqlite+aiosqlite:///{directory / name}"


def packages_imported_by(script: str, *, unset: tuple[str, ...] = ()) -> frozenset[str]:
    """The top-level packages a fresh interpreter holds after running `script`.

    For tests that keep heavy libraries out of serving processes; `unset` names
    environment variables the script must not see (REDIS_URL, say).
    """
    env = {key: value for key, value in os.environ.items() if key not in unset}
    report = "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    result = subprocess.run(
        [sys.executable, "-c", script + report],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return frozenset(json.loads(result.stdout.splitlines()[-1]))
