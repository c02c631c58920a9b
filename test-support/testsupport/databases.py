"""A migrated database per backend, for any service's integration tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from shop_common.testing import fresh_postgres_database, postgres_base_url, sqlite_url

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


async def migrated_database(
    backend: str, directory: Path, migrate: Callable[[str], Coroutine[Any, Any, None]]
) -> AsyncGenerator[str, None]:
    """A new database at the latest migration: a SQLite file, or a fresh PostgreSQL one."""
    if backend == "sqlite":
        url = sqlite_url(directory, f"{uuid.uuid4().hex}.db")
        await migrate(url)
        yield url
        return
    async with fresh_postgres_database(postgres_base_url()) as url:
        await migrate(url)
        yield url
