"""The revisions read from migration files are the ones Alembic finds in the same files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from shop_common.revisions import MigrationTreeError, Revisions, read_revisions

PLAIN = 'revision = "{rev}"\ndown_revision = {down}\n'
ANNOTATED = (
    "from collections.abc import Sequence\n"
    'revision: str = "{rev}"\n'
    "down_revision: str | Sequence[str] | None = {down}\n"
    "branch_labels = None\n"
    "depends_on = None\n"
    "def upgrade() -> None: pass\n"
)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    location = tmp_path / "migrations"
    (location / "versions").mkdir(parents=True)
    (location / "env.py").write_text("")
    (location / "script.py.mako").write_text("")
    for name, text in files.items():
        path = location / "versions" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return location


def _alembic(location: Path) -> Revisions:
    config = Config()
    config.set_main_option("script_location", str(location))
    scripts = ScriptDirectory.from_config(config)
    known = frozenset(script.revision for script in scripts.walk_revisions())
    return Revisions(head=scripts.get_current_head(), known=known)


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({}, id="no-migration"),
        pytest.param(
            {
                "a.py": PLAIN.format(rev="a1", down="None"),
                "b.py": PLAIN.format(rev="b2", down='"a1"'),
            },
            id="linear",
        ),
        pytest.param(
            {
                "1_first.py": ANNOTATED.format(rev="c96923d45af4", down="None"),
                "2_second.py": ANNOTATED.format(rev="d00d", down='"c96923d45af4"'),
            },
            id="annotated-as-generated",
        ),
        pytest.param(
            {
                "a.py": PLAIN.format(rev="a1", down="None"),
                "b.py": PLAIN.format(rev="b2", down='"a1"'),
                "c.py": PLAIN.format(rev="c3", down='"a1"'),
                "m.py": PLAIN.format(rev="m4", down='("b2", "c3")'),
            },
            id="merged-branches",
        ),
        pytest.param(
            {
                "a.py": PLAIN.format(rev="a1", down="None"),
                "__init__.py": PLAIN.format(rev="init", down='"a1"'),
                ".#b.py": PLAIN.format(rev="lock", down='"a1"'),
                "notes.txt": PLAIN.format(rev="txt", down='"a1"'),
                "nested/c.py": PLAIN.format(rev="nested", down='"a1"'),
            },
            id="files-alembic-skips",
        ),
        pytest.param(
            {
                "a1.py": "down_revision = None\n",
                "b.py": PLAIN.format(rev="b2", down='"a1"'),
            },
            id="legacy-file-named-after-its-revision",
        ),
    ],
)
def test_reads_the_head_and_revisions_alembic_reads(tmp_path: Path, files: dict[str, str]) -> None:
    location = _tree(tmp_path, files)
    assert read_revisions(location) == _alembic(location)


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(
            {
                "a.py": PLAIN.format(rev="a1", down="None"),
                "b.py": PLAIN.format(rev="b2", down='"a1"'),
                "c.py": PLAIN.format(rev="c3", down='"a1"'),
            },
            id="two-heads",
        ),
        pytest.param({"b.py": PLAIN.format(rev="b2", down='"gone"')}, id="unknown-down-revision"),
        pytest.param({"x.py": "down_revision = None\n"}, id="no-revision"),
    ],
)
def test_refuses_a_tree_alembic_refuses(tmp_path: Path, files: dict[str, str]) -> None:
    location = _tree(tmp_path, files)
    with warnings.catch_warnings(), pytest.raises((CommandError, KeyError)):
        warnings.simplefilter("ignore")  # Alembic warns about a missing revision, then fails
        _alembic(location)
    with pytest.raises(MigrationTreeError):
        read_revisions(location)
