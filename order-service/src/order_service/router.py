"""The /orders endpoints: validate, call the use cases, shape the response."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Request, Response

from order_service import checkout, service
from order_service.dependencies import (
    ActorDep,
    IdempotencyKeyDep,
    IfMatchDep,
    ListRequestDep,
    SessionDep,
    StockDep,
)
from order_service.exceptions import AdminRequired, InvalidOrder
from order_service.schemas import (
    OrderCreate,
    OrderPage,
    OrderPublic,
    PaymentCreate,
    ShipmentCreate,
    order_document,
)
from order_service.service import Actor
from shop_common.json_body import JsonRoute
from shop_common.problems import problem_responses

router = APIRouter(prefix="/orders", tags=["orders"], route_class=JsonRoute)

OrderId = Annotated[
    str, Path(alias="id", description="The order's id (a UUID; anything else is 404).")
]
_ETAG: dict[str, Any] = {
    "description": "The order's current entity tag, for `If-Match` on its actions.",
    "required": True,
    "schema": {"type": "string", "examples": ['"8a1f5c2e3b4d4e6f9a7b0c1d2e3f4a5b-1"']},
}
_NOT_FOUND = "No order has this id, or it is another buyer's."
_BY_ID = {"id": "$response.body#/id"}
# OpenAPI links: what a client (or a stateful fuzzer) can do next with the order.
_LINKS: dict[str, Any] = {
    "GetOrder": {"operationId": "getOrder", "parameters": _BY_ID},
    "CancelOrder": {
        "operationId": "cancelOrder",
        "parameters": {**_BY_ID, "header.If-Match": "$response.header.ETag"},
    },
    "RecordPayment": {"operationId": "recordPayment", "parameters": _BY_ID},
    "RecordShipment": {"operationId": "recordShipment", "parameters": _BY_ID},
}
_PRECONDITION = "`If-Match` names no current ETag of the order; nothing was changed."
_BODY_PROBLEMS = (400, 401, 413, 415, 422)


def _order(status_code: int, description: str, *, location: bool = False) -> dict[int | str, Any]:
    headers: dict[str, Any] = {"ETag": _ETAG}
    if location:
        headers["Location"] = {
            "description": "The new order's path, `/orders/{id}`.",
            "required": True,
            "schema": {"type": "string"},
        }
    return {status_code: {"description": description, "headers": headers, "links": _LINKS}}


def _json(
    document: Any, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(document),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def _order_response(order: Any) -> Response:
    return _json(order_document(order), headers={"ETag": service.etag_of(order)})


async def require_admin(actor: ActorDep) -> Actor:
    if not actor.is_admin:
        raise AdminRequired("Only an ADMIN may record payments and shipments.")
    return actor


AdminDep = Annotated[Actor, Depends(require_admin)]


@router.post(
    "",
    response_model=OrderPublic,
    status_code=201,
    operation_id="placeOrder",
    summary="Place an order",
    response_description="The order, its stock reserved and waiting for payment.",
    responses={
        **_order(201, "The order, placed: its stock is reserved.", location=True),
        **problem_responses(
            *_BODY_PROBLEMS,
            why={
                400: "The body is not JSON, or the `Idempotency-Key` header is missing or "
                "malformed.",
                409: "A line asks for more than the product's stock (`errors` names each "
                "one; nothing was reserved), or a request with this `Idempotency-Key` is "
                "still being processed.",
                422: "The body is not valid: a product that does not exist, a repeated "
                "product, lines in several currencies, or this `Idempotency-Key` was used "
                "with another body.",
                503: "The stock could not be reserved now; nothing was placed. Retry with the "
                "same `Idempotency-Key`.",
            },
        ),
    },
)
async def place_order(
    actor: ActorDep,
    key: IdempotencyKeyDep,
    data: OrderCreate,
    session: SessionDep,
    stock: StockDep,
    request: Request,
) -> Response:
    """Place an order for products in the catalog; their stock is reserved at once.

    Prices, names and currency come from the catalog as they are now. Send an
    `Idempotency-Key`: repeating the request with the same key and body returns the first
    answer again and places nothing new.
    """
    _no_repeated_products(data)
    answer = await checkout.place_order(
        session,
        stock,
        actor=actor,
        key=key,
        data=data,
        payment_timeout=request.app.state.settings.order_payment_timeout,
    )
    return Response(answer.body, status_code=answer.status, headers=answer.headers)


@router.get(
    "",
    response_model=OrderPage,
    operation_id="listOrders",
    summary="List orders",
    response_description="A page of orders, newest first, and the cursor of the next one.",
    responses=problem_responses(
        401, why={422: "A parameter is not valid, or the cursor was made with other filters."}
    ),
)
async def list_orders(session: SessionDep, request: ListRequestDep) -> Response:
    """Your orders, newest first; an ADMIN sees everyone's and may filter by `user_id`.

    Pass `next_cursor` back as `cursor` for the next page, with the same filters.
    """
    page = await service.list_orders(session, request=request)
    return _json(
        {"items": [order_document(order) for order in page.items], "next_cursor": page.next_cursor}
    )


@router.get(
    "/{id}",
    response_model=OrderPublic,
    operation_id="getOrder",
    summary="Get an order",
    response_description="The order, with its current ETag.",
    responses={**_order(200, "The order."), **problem_responses(401, why={404: _NOT_FOUND})},
)
async def get_order(order_id: OrderId, actor: ActorDep, session: SessionDep) -> Response:
    """One order: yours, or anyone's for an ADMIN."""
    return _order_response(await service.get_order(session, order_id=order_id, actor=actor))


_ACTION_PROBLEMS = {404: _NOT_FOUND, 412: _PRECONDITION}


@router.post(
    "/{id}/cancel",
    response_model=OrderPublic,
    operation_id="cancelOrder",
    summary="Cancel an order",
    response_description="The order, cancelled; its stock goes back to the catalog.",
    responses={
        **_order(200, "The order, cancelled (also when it already was)."),
        **problem_responses(
            401,
            why={
                **_ACTION_PROBLEMS,
                409: "The order can no longer be cancelled (a buyer: once paid; anyone: "
                "once shipped or expired).",
            },
        ),
    },
)
async def cancel_order(
    order_id: OrderId, actor: ActorDep, session: SessionDep, stock: StockDep, if_match: IfMatchDep
) -> Response:
    """Cancel: the buyer while it awaits payment, an ADMIN also once paid (any refund
    happens outside). Its stock returns to the catalog, once."""
    order = await service.change_status(
        session, stock, order_id=order_id, actor=actor, transition=service.CANCEL, if_match=if_match
    )
    return _order_response(order)


@router.post(
    "/{id}/payment",
    response_model=OrderPublic,
    operation_id="recordPayment",
    summary="Record a payment",
    response_description="The order, now paid.",
    responses={
        **_order(200, "The order, paid (also when it already was)."),
        **problem_responses(
            *_BODY_PROBLEMS,
            why={
                **_ACTION_PROBLEMS,
                403: "Only an ADMIN records payments.",
                409: "The order is not awaiting payment.",
            },
        ),
    },
)
async def record_payment(
    order_id: OrderId,
    data: PaymentCreate,
    actor: AdminDep,
    session: SessionDep,
    stock: StockDep,
    if_match: IfMatchDep,
) -> Response:
    """Record a payment taken outside the system (ADMIN); `reference` identifies it."""
    order = await service.change_status(
        session,
        stock,
        order_id=order_id,
        actor=actor,
        transition=service.PAY,
        if_match=if_match,
        values={"payment_reference": data.reference},
    )
    return _order_response(order)


@router.post(
    "/{id}/shipment",
    response_model=OrderPublic,
    operation_id="recordShipment",
    summary="Record a shipment",
    response_description="The order, now shipped.",
    responses={
        **_order(200, "The order, shipped (also when it already was)."),
        **problem_responses(
            *_BODY_PROBLEMS,
            why={
                **_ACTION_PROBLEMS,
                403: "Only an ADMIN records shipments.",
                409: "The order is not paid.",
            },
        ),
    },
)
async def record_shipment(
    order_id: OrderId,
    data: ShipmentCreate,
    actor: AdminDep,
    session: SessionDep,
    stock: StockDep,
    if_match: IfMatchDep,
) -> Response:
    """Record that a paid order was shipped (ADMIN), with its carrier and tracking number."""
    order = await service.change_status(
        session,
        stock,
        order_id=order_id,
        actor=actor,
        transition=service.SHIP,
        if_match=if_match,
        values={"carrier": data.carrier, "tracking_number": data.tracking_number},
    )
    return _order_response(order)


def _no_repeated_products(data: OrderCreate) -> None:
    seen: set[object] = set()
    errors = []
    for number, line in enumerate(data.items):
        if line.product_id in seen:
            errors.append(
                {"field": f"items.{number}.product_id", "message": "is already in the order"}
            )
        seen.add(line.product_id)
    if errors:
        raise InvalidOrder("The order is not valid.", errors=errors)
