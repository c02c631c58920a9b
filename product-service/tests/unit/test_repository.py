from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import Dialect
from sqlalchemy.dialects import postgresql, sqlite

from product_service.cursors import SORTS, Position, ProductFilter, Sort, SortValue
from product_service.repository import escape_like, list_statement

FILTERS = ProductFilter(q="a%b", min_cents=1, max_cents=2, owner_id=uuid.uuid4())
POSITIONS: dict[str, SortValue] = {
    "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    "price": 100,
    "name": "lamp",
}


@pytest.mark.parametrize("dialect", [postgresql.dialect, sqlite.dialect], ids=["pg", "sqlite"])
@pytest.mark.parametrize("sort", SORTS)
def test_list_queries_seek_by_key_and_id_and_never_offset(
    sort: Sort, dialect: type[Dialect]
) -> None:
    after = Position(value=POSITIONS[sort.lstrip("-")], id=uuid.uuid4())
    statement = list_statement(FILTERS, sort=sort, after=after, limit=20)
    compiled = statement.compile(dialect=dialect())
    sql = str(compiled)
    if dialect is sqlite.dialect:
        # SQLAlchemy's SQLite dialect always writes "LIMIT ? OFFSET ?", the offset a
        # constant 0 (a no-op): the statement itself has none.
        assert sql.upper().endswith("LIMIT ? OFFSET ?")
        assert list(compiled.params.values())[-2:] == [21, 0]
    else:
        assert "OFFSET" not in sql.upper()
    assert "LIMIT" in sql.upper()
    assert ", product.id) <" in sql if sort.startswith("-") else ", product.id) >" in sql
    assert "count(" not in sql.lower()


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        pytest.param("50%", "50\\%", id="percent"),
        pytest.param("a_b", "a\\_b", id="underscore"),
        pytest.param("back\\slash", "back\\\\slash", id="escape-character"),
        pytest.param("plain", "plain", id="plain"),
    ],
)
def test_like_wildcards_are_escaped(text: str, escaped: str) -> None:
    assert escape_like(text) == escaped
