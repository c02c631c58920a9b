from __future__ import annotations

from typing import Any

import pytest

from api_gateway import __main__ as cli
from api_gateway.edge_protocol import EdgeProtocol


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(cli, "serve_draining", lambda app, **kw: calls.append({"app": app, **kw}))
    monkeypatch.setattr(cli, "configure_logging", lambda *_args: None)
    return calls


@pytest.mark.parametrize(
    "argv", [pytest.param([], id="default"), pytest.param(["serve"], id="serve")]
)
def test_serve_runs_the_app_factory_on_uvloop_with_the_edge_protocol(
    uvicorn_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "15999")
    monkeypatch.setenv("GATEWAY_HOST", "127.0.0.1")
    monkeypatch.setenv("MAX_HEADER_FIELDS", "50")
    cli.main(argv)
    (call,) = uvicorn_calls
    assert call["app"] == "api_gateway.main:create_app"
    assert call["factory"] is True
    assert (call["host"], call["port"]) == ("127.0.0.1", 15999)
    assert call["loop"] == "uvloop"
    protocol = call["http"]  # uvicorn calls it with its config and server state
    assert protocol.func is EdgeProtocol
    assert protocol.keywords["limits"].max_header_fields == 50
    assert call["access_log"] is False
    assert call["proxy_headers"] is False
    assert call["server_header"] is False  # no Server header naming uvicorn's version
    assert call["drain_seconds"] == 3.0  # SIGTERM: /ready 503 first, then stop


def test_an_unknown_command_is_refused(uvicorn_calls: list[dict[str, Any]]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["migrate"])
    assert uvicorn_calls == []
