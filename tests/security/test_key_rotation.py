"""Key rotation with a live old token: `python -m auth_service keys rotate` on a running
system. The new key is published at the next reload (SIGNING_KEY_RELOAD_SECONDS, 15 s by
default) and signs once it is SIGNING_KEY_ACTIVATION_SECONDS (20 s) old; the gateway
meets its kid in a token, refetches the JWKS and accepts it without a restart, and
tokens signed with the old key keep working. The defaults are kept, so this takes
about 20 s; the bound is 60 s (issue 4's "within 60 s")."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.security.forgery import parts
from tests.security.support import GENEROUS_LIMITS, Shop, Tokens, login, new_user, running_shop

pytestmark = pytest.mark.e2e

NEW_KEY_SIGNS_WITHIN = 60.0


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with running_shop(tmp_path_factory.mktemp("rotation"), **GENEROUS_LIMITS) as running:
        yield running


def kid_of(tokens: Tokens) -> str:
    return str(parts(tokens.access_token)[0]["kid"])


def rotate(shop: Shop) -> None:
    env = {**os.environ, "DATA_DIR": str(shop.data_dir), **shop.env}
    done = subprocess.run(
        [sys.executable, "-m", "auth_service", "keys", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_key_rotation_keeps_old_tokens_alive_and_new_kids_work_without_a_restart(
    shop: Shop, gateway: httpx.Client
) -> None:
    account, old = new_user(gateway)
    old_kid = kid_of(old)
    before = gateway.get("/auth/me", headers=old.headers)
    assert before.status_code == 200, before.text
    rotate(shop)
    started = time.monotonic()

    new = old
    while kid_of(new) == old_kid:
        assert time.monotonic() - started < NEW_KEY_SIGNS_WITHIN, "the new key never signed"
        time.sleep(1)
        new = login(gateway, account.email, account.password)

    published = {key["kid"] for key in gateway.get("/auth/jwks.json").json()["keys"]}
    assert {old_kid, kid_of(new)} <= published
    for tokens in (new, old):
        for path in ("/auth/me", "/products?limit=1"):
            response = gateway.get(path, headers=tokens.headers)
            assert response.status_code == 200, (path, response.text)
    created = gateway.post("/products", headers=new.headers, json={"name": "Fresh", "price": 1})
    assert created.status_code == 201, created.text
