"""The whole system as processes, one per test module, and a client of its gateway."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from testsupport.system import System, start_system, stop_system


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = start_system(tmp_path_factory.mktemp("data"))
    yield running
    stop_system(running)


@pytest.fixture
def gateway(system: System) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.gateway, timeout=15) as client:
        yield client
