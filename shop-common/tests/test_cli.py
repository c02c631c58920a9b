"""The serve | migrate command line every service shares (shop_common.cli)."""

from __future__ import annotations

import argparse
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


class StrictSettings(StubSettings):
    stub_port: int = 1


def _run_with(
    argv: list[str],
    *,
    settings: Callable[[], StubSettings] = StubSettings,
    check_startup: Callable[[StubSettings], object] | None = None,
    commands: dict[str, cli.ExtraCommand[StubSettings]] | None = None,
) -> int:
    async def migrate(url: str) -> None:
        raise AssertionError("not called")

    return cli.service_command(
        argv,
        name="stub-service",
        settings=settings,
        app_factory="stub_service.main:create_app",
        listen=lambda _settings: ("127.0.0.1", 0),
        database_url=lambda settings: settings.stub_database_url,
        migrate=migrate,
        check_startup=check_startup,
        commands=commands,
    )


def _say(settings: StubSettings, arguments: argparse.Namespace) -> int:
    print(f"said {arguments.word} to {settings.stub_database_url}")  # noqa: T201
    return 0


def _refuse(settings: StubSettings, arguments: argparse.Namespace) -> int:
    raise cli.CommandFailed("the word is not allowed")


def _word(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("word")


def test_a_services_own_command_gets_its_arguments_and_the_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    say = cli.ExtraCommand(help="say a word", run=_say, arguments=_word)
    assert _run_with(["say", "hello"], commands={"say": say}) == 0
    assert capsys.readouterr().out.strip() == "said hello to sqlite+aiosqlite:///stub.db"


def test_a_services_own_command_that_fails_is_one_line_and_exit_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    refuse = cli.ExtraCommand(help="refuse", run=_refuse)
    assert _run_with(["refuse"], commands={"refuse": refuse}) == cli.EXIT_FAILURE
    assert capsys.readouterr().err.strip() == "stub-service: the word is not allowed"


def test_a_failed_startup_check_stops_serve_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def check(settings: StubSettings) -> None:
        raise cli.CommandFailed("the gateway's public key is missing")

    # serve would start uvicorn on an app that does not exist: the check comes first.
    assert _run_with(["serve"], check_startup=check) == cli.EXIT_FAILURE
    assert capsys.readouterr().err.strip() == ("stub-service: the gateway's public key is missing")


def test_invalid_settings_are_named_as_environment_variables_in_a_short_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_PORT", "not a number")
    assert _run_with(["migrate"], settings=StrictSettings) == cli.EXIT_FAILURE
    err = capsys.readouterr().err
    assert err.startswith("stub-service: invalid settings:\n  STUB_PORT: ")
    assert "Traceback" not in err
