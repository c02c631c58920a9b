"""One system for every attack that needs no special settings; modules that do (small
rate limits, Redis, short token lifetimes) override `shop` with their own."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.security.support import GENEROUS_LIMITS, Shop, running_shop


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with running_shop(tmp_path_factory.mktemp("shop"), **GENEROUS_LIMITS) as running:
        yield running


@pytest.fixture
def gateway(shop: Shop) -> Iterator[httpx.Client]:
    with shop.client() as client:
        yield client
