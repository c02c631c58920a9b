"""The test helpers (shop_common.testing, shop_common.events.testing, testsupport) and the
test tools stay out of every runtime module: an image has none of them installed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEST_ONLY = ("shop_common.testing", "shop_common.events.testing", "testsupport", "pytest")
RUNTIME_SOURCES = sorted(
    path
    for src in ROOT.glob("*/src")
    for path in src.rglob("*.py")
    if path.stem != "testing"  # the helpers themselves
)


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_runtime_sources_are_found() -> None:
    names = {path.parent.name for path in RUNTIME_SOURCES}
    assert {"shop_common", "auth_service", "product_service", "api_gateway"} <= names


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=str(p.relative_to(ROOT))) for p in RUNTIME_SOURCES]
)
def test_no_runtime_module_imports_a_test_helper(path: Path) -> None:
    test_only = {
        module
        for module in imported_modules(path)
        if any(module == name or module.startswith(f"{name}.") for name in TEST_ONLY)
    }
    assert not test_only, f"{path.relative_to(ROOT)} imports {sorted(test_only)}"


def test_no_runtime_package_ships_a_testing_module_but_shop_common() -> None:
    shipped = sorted(
        str(path.relative_to(ROOT))
        for path in ROOT.glob("*/src/*/**/testing.py")
        if not path.is_relative_to(ROOT / "shop-common")
    )
    assert shipped == []
