"""Use cases: who may change a product, preconditions, versions. Commits explicitly."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from product_service import repository
from product_service.cursors import Position, ProductFilter, Sort, encode_cursor, sort_column
from product_service.documents import COLUMNS, ID, product_document, product_row
from product_service.events import product_event_parameters, record_product_event
from product_service.exceptions import (
    NotProductOwner,
    PreconditionFailed,
    ProductNotFound,
    SkuAlreadyUsed,
)
from product_service.models import Product
from product_service.schemas import ProductCreate, ProductUpdate
from shop_common.database import open_session
from shop_common.etags import Condition
from shop_common.etags import entity_tag as product_etag

_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# A write whose If-Match lists several tags can lose a race and still match the newer
# version; it tries again, a bounded number of times.
_MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Actor:
    """A signed-in caller, as the gateway vouched for it."""

    user_id: uuid.UUID
    is_admin: bool


@dataclass(frozen=True, slots=True)
class ListRequest:
    filters: ProductFilter
    sort: Sort
    after: Position | None
    limit: int


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Sequence[Any]]
    next_cursor: str | None


def etag_of(product: Product) -> str:
    return product_etag(product.id, product.version)


def parse_product_id(text: str) -> uuid.UUID:
    """The id in a path; anything but a UUID names no product (404, as the contract says)."""
    if not _CANONICAL_UUID.fullmatch(text):
        raise ProductNotFound("No product has this id.")
    return uuid.UUID(text)


async def create_product(
    sessions: Callable[[], AsyncSession],
    *,
    actor: Actor,
    data: ProductCreate,
    autocommit: AsyncEngine | None = None,
) -> tuple[Any, ...]:
    """The new product's row (documents.COLUMNS order): one INSERT of values computed here
    (no ORM object, no flush, nothing to read back) and its outbox row, one commit.

    With `autocommit` (PostgreSQL, and a request that may commit alone:
    shop_common.database.may_commit_alone) both are one statement, one round trip, and no
    session is opened at all; else a session from `sessions` makes the transaction."""
    now = datetime.now(UTC)
    values = {
        "id": uuid.uuid4(),
        "owner_id": actor.user_id,
        "created_at": now,
        "updated_at": now,
        "version": 1,
        **_replacement(data),
    }
    row = tuple(values[name] for name in COLUMNS)
    if autocommit is not None:
        event = product_event_parameters("created", product_document(row))
        try:
            await repository.insert_product_with_event(autocommit, values, event)
        except IntegrityError:
            raise SkuAlreadyUsed("Another product already has this SKU.") from None
        return row
    async with open_session(sessions) as session:
        try:
            await repository.insert_product(session, values)
            await record_product_event(session, "created", product_document(row))
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise SkuAlreadyUsed("Another product already has this SKU.") from None
    return row


async def get_product(session: AsyncSession, *, product_id: str) -> Product:
    product = await repository.get_product(session, parse_product_id(product_id))
    if product is None:
        raise ProductNotFound("No product has this id.")
    return product


async def list_products(connection: AsyncConnection, *, request: ListRequest) -> Page:
    rows = await repository.list_products(
        connection,
        filters=request.filters,
        sort=request.sort,
        after=request.after,
        limit=request.limit,
    )
    items = list(rows[: request.limit])
    next_cursor = None
    if len(rows) > request.limit:  # one row beyond the page: another page exists
        last = items[-1]
        value = last[COLUMNS.index(sort_column(request.sort))]
        if isinstance(value, str) and request.sort.endswith("created_at"):
            value = datetime.fromisoformat(value)  # PostgreSQL's text (list_statement)
        position = Position(value=value, id=last[ID])
        next_cursor = encode_cursor(request.sort, request.filters, position)
    return Page(items=items, next_cursor=next_cursor)


async def replace_product(
    session: AsyncSession,
    *,
    product_id: str,
    actor: Actor,
    data: ProductCreate,
    if_match: Condition | None,
) -> Product:
    """PUT: every writable field, the ones not given back to their defaults."""
    return await _write(session, product_id, actor, if_match, _replacement(data))


async def update_product(
    session: AsyncSession,
    *,
    product_id: str,
    actor: Actor,
    data: ProductUpdate,
    if_match: Condition | None,
) -> Product:
    """PATCH: only the fields given."""
    values = data.model_dump(include=data.model_fields_set)
    if "name" in values:
        values["name_lower"] = values["name"].casefold()
    if "description" in values:
        values["description_lower"] = values["description"].casefold()
    return await _write(session, product_id, actor, if_match, values)


async def delete_product(
    session: AsyncSession, *, product_id: str, if_match: Condition | None
) -> None:
    """DELETE (the caller was checked to be ADMIN before the body or the id)."""
    identifier = parse_product_id(product_id)
    for _ in range(_MAX_ATTEMPTS):
        current = await _read_for_write(session, identifier)
        expected_version = _check_precondition(current, if_match)
        if await repository.delete_product(session, identifier, expected_version=expected_version):
            await record_product_event(session, "deleted", {"id": str(identifier)})
            await session.commit()
            return
        await session.rollback()
    raise PreconditionFailed("The product kept changing; read it again and retry.")


async def _write(
    session: AsyncSession,
    product_id: str,
    actor: Actor,
    if_match: Condition | None,
    values: dict[str, Any],
) -> Product:
    identifier = parse_product_id(product_id)
    for _ in range(_MAX_ATTEMPTS):
        current = await _read_for_write(session, identifier)
        # owner_id never changes, so this check stays true however the race below ends.
        if not (actor.is_admin or current.owner_id == actor.user_id):
            raise NotProductOwner("Only the product's owner or an ADMIN may change it.")
        expected_version = _check_precondition(current, if_match)
        try:
            updated = await repository.update_product(
                session,
                identifier,
                values={**values, "updated_at": datetime.now(UTC)},
                expected_version=expected_version,
            )
        except IntegrityError:
            await session.rollback()
            raise SkuAlreadyUsed("Another product already has this SKU.") from None
        if updated is not None:
            await record_product_event(session, "updated", _document(updated))
            await session.commit()
            return updated
        # Another write (or a delete) came first: read again and decide afresh.
        await session.rollback()
    raise PreconditionFailed("The product kept changing; read it again and retry.")


async def _read_for_write(session: AsyncSession, product_id: uuid.UUID) -> Product:
    product = await repository.get_product(session, product_id)
    # End the read transaction before writing: on SQLite (WAL) a read transaction that
    # later writes fails with SQLITE_BUSY if another connection wrote in between. The
    # conditional UPDATE makes the read-then-write safe without holding anything.
    await session.commit()
    if product is None:
        raise ProductNotFound("No product has this id.")
    return product


def _check_precondition(current: Product, if_match: Condition | None) -> int | None:
    """The version the write must find, or None when any version will do."""
    if if_match is None:
        return None
    if not if_match.matches_strongly(etag_of(current)):
        raise PreconditionFailed("If-Match does not match the product's current ETag.")
    return None if if_match.any else current.version


def _replacement(data: ProductCreate) -> dict[str, Any]:
    return {
        "name": data.name,
        "name_lower": data.name.casefold(),
        "description": data.description,
        "description_lower": data.description.casefold(),
        "price_cents": data.price_cents,
        "currency": data.currency,
        "stock": data.stock,
        "sku": data.sku,
    }


def _document(product: Product) -> dict[str, Any]:
    """The product as the API shows it: the data of product.created and product.updated."""
    return product_document(product_row(product))
