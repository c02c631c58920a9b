"""Readiness from the schema: at head, past head (a newer release), behind, unmigrated."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from shop_common.database import create_engine, schema_state

pytestmark = pytest.mark.anyio
REVISION = """
revision = "{rev}"
down_revision = {down}
def upgrade(): pass
def downgrade(): pass
"""


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    location = tmp_path / "migrations"
    (location / "versions").mkdir(parents=True)
    (location / "env.py").write_text("")
    (location / "script.py.mako").write_text("")
    (location / "versions" / "a.py").write_text(REVISION.format(rev="a1", down="None"))
    (location / "versions" / "b.py").write_text(REVISION.format(rev="b2", down='"a1"'))
    return location


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        pytest.param("b2", "ok", id="at-head"),
        pytest.param("z9-newer-release", "ok", id="past-head"),
        pytest.param("a1", "migration_pending", id="behind"),
        pytest.param(None, "migration_pending", id="unmigrated"),
    ],
)
async def test_schema_state(
    tmp_path: Path, scripts: Path, stored: str | None, expected: str
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    if stored is not None:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE svc_version (version_num VARCHAR(32))"))
            await connection.execute(text(f"INSERT INTO svc_version VALUES ('{stored}')"))
    assert await schema_state(engine, scripts, "svc_version") == expected
    await engine.dispose()


async def test_an_unreachable_database_is_unavailable(scripts: Path) -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert await schema_state(engine, scripts, "svc_version") == "unavailable"
    await engine.dispose()
