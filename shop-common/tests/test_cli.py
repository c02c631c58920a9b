"""The serve | migrate command line every service shares (shop_common.cli)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from shop_common import cli
from shop_common.settings import ServiceSettings


class StubSettings(ServiceSettings):
    stub_database_url: str = "sqlite+aiosqlite:///stub.db"


def _run(argv: list[str], migrate: Callable[[str], Coroutine[Any, Any, None]]) -> int:
    return cli.service_command(
        argv,
        name="stub-service",
        settings=StubSettings,
        app_factory="stub_service.main:create_app",
        listen=lambda _settings: ("127.0.0.1", 0),
        database_url=lambda settings: settings.stub_database_url,
        migrate=migrate,
    )


def test_migrate_runs_the_services_migration_on_its_database_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[str] = []

    async def migrate(url: str) -> None:
        seen.append(url)

    assert _run(["migrate"], migrate) == 0
    assert seen == ["sqlite+aiosqlite:///stub.db"]
    assert "stub-service: database at the latest migration" in capsys.readouterr().out


def test_a_failed_migration_is_one_line_and_exit_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def migrate(url: str) -> None:
        raise ConnectionRefusedError("no database here")

    assert _run(["migrate"], migrate) == cli.EXIT_FAILURE
    err = capsys.readouterr().err
    assert err.strip() == (
        "stub-service: migration failed: ConnectionRefusedError: no database here"
    )


def test_an_unknown_command_is_refused_by_the_parser() -> None:
    async def migrate(url: str) -> None:
        raise AssertionError("not called")

    with pytest.raises(SystemExit) as exited:
        _run(["drop-everything"], migrate)
    assert exited.value.code == 2


def test_several_workers_on_sqlite_are_refused_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def migrate(url: str) -> None:
        raise AssertionError("not called")

    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    assert _run(["serve"], migrate) == cli.EXIT_FAILURE
    assert capsys.readouterr().err.strip() == (
        "stub-service: WEB_CONCURRENCY=2 needs PostgreSQL; SQLite runs one process"
    )
