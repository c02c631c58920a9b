"""Every query product-service runs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    Table,
    Text,
    Uuid,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from product_service.cursors import Position, ProductFilter, Sort, sort_column
from product_service.models import OUTBOX_TABLE, SEARCHED_COLUMNS, Product
from shop_common.events.outbox import wake_relays, with_event

LIKE_ESCAPE = "\\"
_PRODUCT = Product.__table__
_TABLE = Product.__tablename__
# The driver's own SQL for the hot read, its columns taken from the model.
_BY_ID_SQL = f"SELECT {', '.join(_PRODUCT.columns.keys())} FROM {_TABLE} WHERE id = $1"
# The API's timestamp text (RFC 3339, UTC, always six digits of microseconds), as
# PostgreSQL's to_char writes it; constants in the SQL text, not parameters.
_UTC: ColumnElement[str] = literal_column("'UTC'")
_RFC3339: ColumnElement[str] = literal_column("""'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'""")
_TIMESTAMPS = ("created_at", "updated_at")


async def get_product(session: AsyncSession, product_id: uuid.UUID) -> Product | None:
    return await session.get(Product, product_id, populate_existing=True)


async def read_product(connection: AsyncConnection, product_id: uuid.UUID) -> Sequence[Any] | None:
    """The product's columns (documents.COLUMNS order), in one round trip, no transaction.

    On PostgreSQL the driver's own `fetchrow`, whose statement cache prepares the query
    once per connection: no Core statement, no result processing (80 µs of CPU less than
    `exec_driver_sql`, docs/decisions/product-service-read-path.md). A driver error
    invalidates the connection (SQLAlchemy did not see it fail) and is raised as the
    DBAPIError SQLAlchemy would have raised, so the request gets the same 503. When
    something listens to the engine's SQL (tracing's spans), the query goes through
    SQLAlchemy instead, so the span exists. Elsewhere (SQLite) a Core SELECT.
    """
    if connection.dialect.name != "postgresql":
        result = await connection.execute(select(_PRODUCT).where(_PRODUCT.c.id == product_id))
        return result.first()
    if connection.sync_engine.dispatch.before_cursor_execute:
        return (await connection.exec_driver_sql(_BY_ID_SQL, (product_id,))).first()
    driver: Any = (await connection.get_raw_connection()).driver_connection
    try:
        row: Sequence[Any] | None = await driver.fetchrow(_BY_ID_SQL, product_id)
    except Exception as exc:
        await connection.invalidate()
        raise DBAPIError(_BY_ID_SQL, (product_id,), exc, connection_invalidated=True) from exc
    return row


# Built once, its values passed as parameters: `insert(...).values(**values)` made a new
# statement per request, and coercing its values cost more CPU than the rest of the write
# (docs/decisions/product-service-list-and-write-speed.md).
# On the Table, not the mapped class: an ORM-enabled INSERT costs ~30 % more CPU here.
_INSERT = insert(cast(Table, _PRODUCT))


# The same INSERT and its product.created outbox row as one statement (PostgreSQL).
_INSERT_WITH_EVENT = with_event(
    insert(cast(Table, _PRODUCT)).values(
        {column.name: bindparam(column.name, type_=column.type) for column in _PRODUCT.columns}
    ),
    OUTBOX_TABLE,
)


async def insert_product(session: AsyncSession, values: Mapping[str, Any]) -> None:
    """One Core INSERT in the session's transaction: no ORM object, no unit of work."""
    await session.execute(_INSERT, dict(values))


async def insert_product_with_event(
    autocommit: AsyncEngine, values: Mapping[str, Any], event: Mapping[str, Any]
) -> None:
    """The INSERT and its event's outbox row in one statement that commits as it runs:
    one round trip instead of BEGIN, two INSERTs and COMMIT. `event` is
    shop_common.events.event_parameters(...)."""
    async with autocommit.connect() as connection:
        await connection.execute(_INSERT_WITH_EVENT, {**values, **event})
    wake_relays()


async def update_product(
    session: AsyncSession,
    product_id: uuid.UUID,
    *,
    values: Mapping[str, Any],
    expected_version: int | None,
) -> Product | None:
    """One conditional UPDATE that bumps the version; None when no row matched.

    With expected_version, a concurrent write that got there first makes the WHERE
    clause false, so of several writers holding the same version exactly one wins.
    """
    statement = (
        update(Product)
        .where(*_same_row(product_id, expected_version))
        .values(**values, version=Product.version + 1)
        .returning(Product)
        .execution_options(populate_existing=True)
    )
    result = await session.execute(statement)
    return result.scalars().one_or_none()


async def delete_product(
    session: AsyncSession, product_id: uuid.UUID, *, expected_version: int | None
) -> bool:
    statement = delete(Product).where(*_same_row(product_id, expected_version))
    result = await session.execute(statement.returning(Product.id))
    return result.first() is not None


async def list_products(
    connection: AsyncConnection,
    *,
    filters: ProductFilter,
    sort: Sort,
    after: Position | None,
    limit: int,
) -> Sequence[Sequence[Any]]:
    """Rows (documents.COLUMNS order), not ORM objects: a page is only read and sent.

    On PostgreSQL the statement is compiled once per shape (sort, which filters, first page
    or not) and its SQL run by the driver's `fetch`, with the same error translation and
    the same exception for traced SQL as read_product: no Core result processing per row,
    and the timestamps come as the API's text (see list_statement)
    (docs/decisions/product-service-list-and-write-speed.md). Elsewhere (SQLite) Core.
    """
    if (
        connection.dialect.name != "postgresql"
        or connection.sync_engine.dispatch.before_cursor_execute
    ):
        statement = list_statement(filters, sort=sort, after=after, limit=limit)
        rows: Sequence[Sequence[Any]] = (await connection.execute(statement)).all()
        return rows
    shape = (
        sort,
        filters.owner_id is not None,
        filters.min_cents is not None,
        filters.max_cents is not None,
        bool(filters.q),
        after is not None,
    )
    compiled = _COMPILED.get(shape)
    if compiled is None:
        # Built only for a shape not seen yet: building it (~30 µs) cost a page of 20 a
        # tenth of a GET by id.
        statement = list_statement(
            filters, sort=sort, after=after, limit=limit, timestamps_as_text=True
        )
        query = statement.compile(dialect=connection.dialect)
        compiled = _COMPILED[shape] = (query.string, tuple(query.positiontup or ()))
    sql, names = compiled
    values = _list_values(filters, after, limit)
    arguments = [values[name] for name in names]
    driver: Any = (await connection.get_raw_connection()).driver_connection
    try:
        records: Sequence[Sequence[Any]] = await driver.fetch(sql, *arguments)
    except Exception as exc:
        await connection.invalidate()
        raise DBAPIError(sql, arguments, exc, connection_invalidated=True) from exc
    return records


# The list query's SQL and parameter order, per shape (at most 6 sorts x 32 shapes).
_COMPILED: dict[tuple[Any, ...], tuple[str, tuple[str, ...]]] = {}


def _list_values(filters: ProductFilter, after: Position | None, limit: int) -> dict[str, Any]:
    """The values of list_statement's named parameters."""
    return {
        "owner_id": filters.owner_id,
        "min_cents": filters.min_cents,
        "max_cents": filters.max_cents,
        "pattern": f"%{escape_like(filters.q)}%" if filters.q else None,
        "after_value": after.value if after is not None else None,
        "after_id": after.id if after is not None else None,
        "limit": limit + 1,
    }


def list_statement(
    filters: ProductFilter,
    *,
    sort: Sort,
    after: Position | None,
    limit: int,
    timestamps_as_text: bool = False,
) -> Select[Any]:
    """Keyset paging: WHERE (key, id) beyond the last row sent, ORDER BY key, id, LIMIT.

    Never OFFSET: each page starts with an index seek, at row 1,000,000 as at row 1.
    Every parameter is named (see _list_values), so one shape compiles to one SQL text.
    `timestamps_as_text` (PostgreSQL only): created_at and updated_at as the API writes
    them, formatted by PostgreSQL; the driver would build an aware datetime per value in
    Python and orjson format it again, ~1 µs per row of a page.
    """
    column = getattr(Product, sort_column(sort))
    descending = sort.startswith("-")
    values = _list_values(filters, after, limit)
    columns = [
        func.to_char(func.timezone(_UTC, item), _RFC3339).label(item.name)
        if timestamps_as_text and item.name in _TIMESTAMPS
        else item
        for item in _PRODUCT.columns
    ]
    statement = select(*columns)
    if filters.owner_id is not None:
        statement = statement.where(
            Product.owner_id == bindparam("owner_id", values["owner_id"], type_=Uuid)
        )
    if filters.min_cents is not None:
        statement = statement.where(
            Product.price_cents >= bindparam("min_cents", values["min_cents"], type_=BigInteger)
        )
    if filters.max_cents is not None:
        statement = statement.where(
            Product.price_cents <= bindparam("max_cents", values["max_cents"], type_=BigInteger)
        )
    if filters.q:
        pattern = bindparam("pattern", values["pattern"], type_=Text)
        statement = statement.where(
            or_(
                *(
                    getattr(Product, column).like(pattern, escape=LIKE_ESCAPE)
                    for column in SEARCHED_COLUMNS
                )
            )
        )
    if after is not None:
        key = tuple_(column, Product.id)
        bound = tuple_(
            bindparam("after_value", values["after_value"], type_=column.type),
            bindparam("after_id", values["after_id"], type_=Uuid),
        )
        statement = statement.where(key < bound if descending else key > bound)
    if descending:
        statement = statement.order_by(column.desc(), Product.id.desc())
    else:
        statement = statement.order_by(column.asc(), Product.id.asc())
    return statement.limit(bindparam("limit", values["limit"], type_=Integer))


def escape_like(text: str) -> str:
    """`%`, `_` and the escape character itself match only themselves."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def _same_row(product_id: uuid.UUID, expected_version: int | None) -> list[ColumnElement[bool]]:
    conditions = [Product.id == product_id]
    if expected_version is not None:
        conditions.append(Product.version == expected_version)
    return conditions
