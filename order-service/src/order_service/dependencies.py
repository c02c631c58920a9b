"""Request-scoped dependencies: the session, the caller, the key, the list parameters."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Query
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.cursors import MAX_CURSOR_LENGTH, InvalidCursor, OrderFilter, decode_cursor
from order_service.exceptions import InvalidListQuery
from order_service.schemas import PublicStatus
from order_service.service import Actor, ListRequest
from order_service.stock import StockClient
from shop_common.credential import Caller
from shop_common.dependencies import (
    app_state_dependency,
    get_caller,
    get_session,
    if_match_dependency,
    signed_in_user_id,
)
from shop_common.etags import Condition

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"


SessionDep = Annotated[AsyncSession, Depends(get_session)]
StockDep = Annotated[StockClient, Depends(app_state_dependency("stock"))]
CallerDep = Annotated[Caller, Depends(get_caller)]


async def require_user(caller: CallerDep) -> Actor:
    """Every order route needs a signed-in caller."""
    user_id = signed_in_user_id(caller, sign_in="Sign in to see or place orders.")
    return Actor(user_id=user_id, is_admin=caller.is_admin)


ActorDep = Annotated[Actor, Depends(require_user)]


async def idempotency_key(
    key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            description="1-255 visible ASCII characters, unique per order you mean to place: "
            "a repeat with the same key and body gets the first answer again.",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            examples=["2f1c7d0e-checkout-1"],
        ),
    ],
) -> str:
    """A missing or malformed key is 400, before any body error (main.py's handler)."""
    return key


IdempotencyKeyDep = Annotated[str, Depends(idempotency_key)]

IfMatchDep = Annotated[
    Condition | None,
    Depends(if_match_dependency("order", '"8a1f5c2e3b4d4e6f9a7b0c1d2e3f4a5b-1"')),
]


async def list_request(
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Orders per page.")] = 20,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page."),
    ] = None,
    status: Annotated[PublicStatus | None, Query(description="Only orders in this status.")] = None,
    user_id: Annotated[
        uuid.UUID | None,
        Query(description="ADMIN only: this buyer's orders (ignored for a USER)."),
    ] = None,
) -> ListRequest:
    owner = user_id if actor.is_admin else actor.user_id
    filters = OrderFilter(user_id=owner, status=status)
    before = None
    if cursor is not None:
        try:
            before = decode_cursor(cursor, filters=filters)
        except InvalidCursor as exc:
            raise InvalidListQuery(
                "The query parameters are not valid.",
                errors=[{"field": "query.cursor", "message": str(exc)}],
            ) from None
    return ListRequest(filters=filters, before_number=before, limit=limit)


ListRequestDep = Annotated[ListRequest, Depends(list_request)]
