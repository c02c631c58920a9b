"""Is a database already at its newest migration? Asked without SQLAlchemy or Alembic.

`make run`'s launcher asks before it starts a `migrate` process, whose imports cost about
a second of CPU. Only a sure "yes" skips that process: a URL form this module does not
know, a connection that fails, a version table with anything but the head answer "no",
and the migrate step runs as it always did (and reports whatever is wrong).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from shop_common.revisions import MigrationTreeError, read_revisions

_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_SQLITE_PREFIX = "sqlite+aiosqlite:///"


async def at_head(url: str, script_location: Path, version_table: str, *, timeout: float) -> bool:
    """True only when the database at `url` is surely at the head of `script_location`."""
    if not _TABLE_NAME.fullmatch(version_table):
        return False
    try:
        head = read_revisions(script_location).head
    except (OSError, SyntaxError, MigrationTreeError):
        return False
    if head is None:
        return False
    if url.startswith(_SQLITE_PREFIX):
        rows = await asyncio.to_thread(_sqlite_versions, url, version_table)
    elif url.startswith("postgresql+asyncpg://"):
        rows = await _postgres_versions(url, version_table, timeout)
    else:
        return False
    return rows == [head]


def _sqlite_versions(url: str, version_table: str) -> list[str] | None:
    """The version table's rows; None when unsure. Never creates the file."""
    path = url.removeprefix(_SQLITE_PREFIX)
    if not path or "?" in path or path.startswith(":memory:") or not Path(path).is_file():
        return None
    try:
        # Read-only, so the check leaves no file or journal behind; a locked or odd file
        # is simply "unsure".
        connection = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return None
    try:
        cursor = connection.execute(f'SELECT version_num FROM "{version_table}"')
        return [str(row[0]) for row in cursor.fetchall()]
    except sqlite3.Error:
        return None
    finally:
        connection.close()


async def _postgres_versions(url: str, version_table: str, timeout: float) -> list[str] | None:
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        return None  # driver options (ssl, a socket directory): leave them to the migrate step
    import asyncpg  # type: ignore[import-untyped]  # only for PostgreSQL URLs

    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))
    try:
        connection = await asyncpg.connect(dsn, timeout=timeout)
    except Exception:  # refused, unknown database, bad password...: the migrate step says
        return None
    try:
        records = await connection.fetch(
            f'SELECT version_num FROM "{version_table}"', timeout=timeout
        )
        return [str(record[0]) for record in records]
    except Exception:  # no version table yet (nothing migrated), or anything else
        return None
    finally:
        with contextlib.suppress(Exception):
            await connection.close(timeout=timeout)
