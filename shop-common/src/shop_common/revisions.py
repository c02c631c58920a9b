"""A service's migration revisions, read from its Alembic files without importing Alembic.

Readiness compares the database's version with the newest revision on every probe; Alembic
(with Mako and Pygments) would cost every serving process ~8 MB of memory for that alone
(docs/decisions/service-memory.md). Migrating still uses Alembic, which reads the same
`revision` and `down_revision` assignments; tests check that both agree.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

# The files Alembic loads from versions/ (alembic.script.base): every *.py file at the top
# level but editor lock files and __init__.py; an old file without `revision` is named
# after it.
_REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
_LEGACY_NAME = re.compile(r"([a-f0-9]+)\.py$")


class MigrationTreeError(ValueError):
    """The migration files do not form one line of revisions with a single head."""


@dataclass(frozen=True)
class Revisions:
    head: str | None  # None: no migration at all
    known: frozenset[str]


@functools.cache
def read_revisions(script_location: Path) -> Revisions:
    """The head and every revision under `script_location`/versions; read once per process."""
    down_of: dict[str, tuple[str, ...]] = {}
    versions = script_location / "versions"
    files = sorted(versions.iterdir()) if versions.is_dir() else []
    for path in files:
        if path.is_file() and _REVISION_FILE.match(path.name):
            revision, down = _read_file(path)
            down_of[revision] = down
    pointed_at = {down for downs in down_of.values() for down in downs}
    missing = pointed_at - down_of.keys()
    if missing:
        # Alembic fails on these too (a branch label used as down_revision included).
        raise MigrationTreeError(f"down_revision names unknown revisions: {sorted(missing)}")
    heads = sorted(down_of.keys() - pointed_at)
    if len(heads) > 1:
        raise MigrationTreeError(f"the migrations have several heads: {heads}; merge them")
    if down_of and not heads:
        raise MigrationTreeError("the migrations form a cycle")
    return Revisions(head=heads[0] if heads else None, known=frozenset(down_of))


def _read_file(path: Path) -> tuple[str, tuple[str, ...]]:
    """`revision` and the `down_revision`s that a migration file assigns at its top level."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_bytes(), filename=str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                raise MigrationTreeError(f"{path}: {target.id} is not a literal") from None
    revision = values.get("revision")
    if "revision" not in values and (legacy := _LEGACY_NAME.match(path.name)):
        revision = legacy.group(1)
    if not isinstance(revision, str):
        raise MigrationTreeError(f"{path}: no revision id")
    if "down_revision" not in values:
        raise MigrationTreeError(f"{path}: no down_revision")
    down = values["down_revision"]
    if down is None:
        return revision, ()
    if isinstance(down, str):
        return revision, (down,)
    if isinstance(down, tuple | list) and all(isinstance(item, str) for item in down):
        return revision, tuple(down)
    raise MigrationTreeError(f"{path}: down_revision is not a string or a tuple of them")
