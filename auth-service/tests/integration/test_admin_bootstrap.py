import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import select

from auth_service import main
from auth_service.bootstrap import StartupError
from auth_service.db import migrate_database
from auth_service.main import create_app
from auth_service.models import Account
from shop_common.testing import random_email

pytestmark = pytest.mark.anyio
ADMIN_PASSWORD = "admin password 1"


async def accounts_with_email(api: Any, email: str) -> list[Account]:
    async with api.app.state.sessionmaker() as session:
        return list(
            (await session.execute(select(Account).where(Account.email == email))).scalars()
        )


async def test_start_creates_the_configured_admin(start_api):
    email = random_email()
    async with start_api(admin_email=f"  {email.upper()} ", admin_password=ADMIN_PASSWORD) as api:
        tokens = await api.login(email, ADMIN_PASSWORD)
        me = await api.client.get("/auth/me", headers=api.bearer(tokens))
        assert me.json()["role"] == "ADMIN"
        assert me.json()["email"] == email


async def test_start_never_changes_an_existing_account(start_api, caplog):
    email = random_email()
    async with start_api() as api:
        user = await api.register(email=email, password="user password")
    with caplog.at_level(logging.WARNING):
        async with start_api(admin_email=email, admin_password=ADMIN_PASSWORD) as api:
            tokens = await api.login(email, "user password")
            me = await api.client.get("/auth/me", headers=api.bearer(tokens))
            assert me.json() == user
            failed = await api.client.post(
                "/auth/login", json={"email": email, "password": ADMIN_PASSWORD}
            )
            assert failed.status_code == 401
    skipped = [
        r for r in caplog.records if getattr(r, "security_event", None) == "admin_bootstrap_skipped"
    ]
    assert [r.account_id for r in skipped] == [user["id"]]
    assert "not an ADMIN" in skipped[0].reason


async def test_restarting_keeps_one_admin_with_its_first_password(start_api):
    email = random_email()
    async with start_api(admin_email=email, admin_password=ADMIN_PASSWORD):
        pass
    async with start_api(admin_email=email, admin_password="another password") as api:
        await api.login(email, ADMIN_PASSWORD)
        assert len(await accounts_with_email(api, email)) == 1


async def test_replicas_starting_together_create_one_admin(start_api):
    email = random_email()
    starts = [start_api(admin_email=email, admin_password=ADMIN_PASSWORD) for _ in range(3)]
    apis = await asyncio.gather(*(start.__aenter__() for start in starts))
    try:
        assert len(await accounts_with_email(apis[0], email)) == 1
    finally:
        for start in starts:
            await start.__aexit__(None, None, None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"admin_password": "short"}, "ADMIN_PASSWORD", id="password too short"),
        pytest.param({"admin_password": "p" * 129}, "ADMIN_PASSWORD", id="password too long"),
        pytest.param({"admin_email": "not-an-email"}, "ADMIN_EMAIL", id="invalid email"),
        # An environment value with bytes that are not UTF-8 arrives as lone surrogates.
        pytest.param(
            {"admin_password": "pass\udcffword"}, "ADMIN_PASSWORD", id="password not UTF-8"
        ),
        pytest.param({"admin_password": None}, "set together", id="email without password"),
        pytest.param({"admin_email": None}, "set together", id="password without email"),
    ],
)
async def test_an_unusable_admin_setting_stops_the_start(
    make_settings, gateway, overrides, message
):
    values = {"admin_email": random_email(), "admin_password": ADMIN_PASSWORD} | overrides
    with pytest.raises(StartupError, match=message) as caught:
        create_app(make_settings(**values))
    if values["admin_password"]:
        assert values["admin_password"] not in str(caught.value)


async def test_empty_admin_settings_mean_no_admin(start_api):
    async with start_api(admin_email="", admin_password="") as api:
        assert (await api.client.get("/ready")).status_code == 200


async def test_admin_is_created_once_the_database_is_migrated(
    start_api, other_empty_database_url, monkeypatch
):
    monkeypatch.setattr(main, "ADMIN_RETRY_SECONDS", 0.05)
    email = random_email()
    async with start_api(
        auth_database_url=other_empty_database_url, admin_email=email, admin_password=ADMIN_PASSWORD
    ) as api:
        assert (await api.client.get("/ready")).status_code == 503
        await migrate_database(other_empty_database_url)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if await accounts_with_email(api, email):
                break
        await api.login(email, ADMIN_PASSWORD)
