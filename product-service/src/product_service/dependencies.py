"""Request-scoped dependencies: the session, the caller and the list parameters.

All `async def`: none blocks, and FastAPI runs a plain `def` dependency in a worker
thread on every request (9 % of a GET's CPU in the profile, docs/performance.md).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, get_type_hints

from fastapi import Depends, Header, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError, WithJsonSchema, create_model
from sqlalchemy.ext.asyncio import AsyncSession

from product_service.cursors import (
    DEFAULT_SORT,
    MAX_CURSOR_LENGTH,
    InvalidCursor,
    ProductFilter,
    Sort,
    decode_cursor,
)
from product_service.exceptions import AdminRequired, InvalidListQuery
from product_service.prices import (
    InvalidPrice,
    highest_cents_at_or_below,
    lowest_cents_at_or_above,
    parse_price_bound,
)
from product_service.service import Actor, ListRequest
from shop_common.credential import Caller
from shop_common.dependencies import (
    get_caller,
    get_session,
    if_match_dependency,
    signed_in_user_id,
)
from shop_common.etags import Condition, parse_condition
from shop_common.models import ALLOWED_IN_LONG_TEXT, has_control_character

SessionDep = Annotated[AsyncSession, Depends(get_session)]
CallerDep = Annotated[Caller, Depends(get_caller)]


async def require_user(caller: CallerDep) -> Actor:
    """Writes need a signed-in caller."""
    user_id = signed_in_user_id(caller, sign_in="Sign in to change products.")
    return Actor(user_id=user_id, is_admin=caller.is_admin)


ActorDep = Annotated[Actor, Depends(require_user)]


async def require_admin(actor: ActorDep) -> Actor:
    if not actor.is_admin:
        raise AdminRequired("Only an ADMIN may delete products.")
    return actor


# Described as one string (a comma-separated list of ETags, or `*`), as it travels; every
# line of a repeated header is read.
_ETAG_LIST_SCHEMA = WithJsonSchema(
    {"type": "string", "examples": ['"5f0c3a1e9d2b4c7a8e6f1b2c3d4e5f6a-1"', "*"]}
)


async def if_none_match_condition(
    if_none_match: Annotated[
        list[str] | None,
        Header(
            alias="If-None-Match",
            description="ETags (comma-separated) or `*` the client holds: 304 when one "
            "matches the current ETag (weak comparison).",
        ),
        _ETAG_LIST_SCHEMA,
    ] = None,
) -> Condition | None:
    return parse_condition(if_none_match or [])


IfMatchDep = Annotated[
    Condition | None,
    Depends(if_match_dependency("product", '"5f0c3a1e9d2b4c7a8e6f1b2c3d4e5f6a-1"')),
]
IfNoneMatchDep = Annotated[Condition | None, Depends(if_none_match_condition)]


async def list_request(
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page.")] = 20,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page."),
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Case-insensitive substring of name or description."),
    ] = None,
    min_price: Annotated[
        str | None, Query(description="Lowest price, inclusive.", examples=["10.5"])
    ] = None,
    max_price: Annotated[
        str | None, Query(description="Highest price, inclusive.", examples=["99.99"])
    ] = None,
    owner_id: Annotated[uuid.UUID | None, Query(description="Only this user's products.")] = None,
    sort: Annotated[Sort, Query(description="Sort order; ties broken by id.")] = DEFAULT_SORT,
) -> ListRequest:
    errors: list[dict[str, str]] = []
    if q is not None and has_control_character(q, ALLOWED_IN_LONG_TEXT):
        # No name or description holds one (and PostgreSQL text cannot hold NUL).
        errors.append({"field": "query.q", "message": "must not contain control characters"})
    bounds = {}
    for name, text in (("min_price", min_price), ("max_price", max_price)):
        if text is not None:
            try:
                bounds[name] = parse_price_bound(text)
            except InvalidPrice as exc:
                errors.append({"field": f"query.{name}", "message": str(exc)})
    low, high = bounds.get("min_price"), bounds.get("max_price")
    if low is not None and high is not None and low > high:
        errors.append({"field": "query.min_price", "message": "must not be above max_price"})
    if errors:
        raise InvalidListQuery("The query parameters are not valid.", errors=errors)
    filters = ProductFilter(
        q=q.casefold() if q else None,
        min_cents=None if low is None else lowest_cents_at_or_above(low),
        max_cents=None if high is None else highest_cents_at_or_below(high),
        owner_id=owner_id,
    )
    after = None
    if cursor is not None:
        try:
            after = decode_cursor(cursor, sort=sort, filters=filters)
        except InvalidCursor as exc:
            raise InvalidListQuery(
                "The query parameters are not valid.",
                errors=[{"field": "query.cursor", "message": str(exc)}],
            ) from None
    return ListRequest(filters=filters, sort=sort, after=after, limit=limit)


ListRequestDep = Annotated[ListRequest, Depends(list_request)]


def _query_model() -> type[BaseModel]:
    """list_request's parameters as one pydantic model: the same types, bounds and
    defaults, so the same checks and the same error messages as FastAPI's per-parameter
    validation (a unit test compares the two), in one pydantic-core call."""
    hints = get_type_hints(list_request, include_extras=True)
    fields: dict[str, Any] = {
        name: (hints[name], parameter.default)
        for name, parameter in inspect.signature(list_request).parameters.items()
    }
    return create_model("ListQuery", **fields)


_LIST_QUERY = _query_model()


async def parse_list_query(query: Mapping[str, str]) -> ListRequest:
    """What GET /products asks for, from its query string, as list_request would be
    given it by FastAPI: the last value of a repeated parameter, unknown ones ignored,
    a missing one its default, and the same 422 problems for bad values.

    The route calls this itself rather than having FastAPI solve list_request's seven
    parameters one by one, which cost a page of 20 more than its rows
    (docs/decisions/product-service-list-and-write-speed.md).
    """
    try:
        checked = _LIST_QUERY.model_validate(query)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        ) from None
    # The fields' values by name (a model's __dict__ holds exactly its fields).
    return await list_request(**checked.__dict__)
