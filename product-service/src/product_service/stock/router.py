"""/stock/reservations: order-service's calls only (the gateway never routes /stock)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from product_service.dependencies import SessionDep
from product_service.prices import cents_to_json
from product_service.stock import service
from product_service.stock.schemas import (
    ReservationCreate,
    ReservationLinePublic,
    ReservationPublic,
)
from shop_common.callers import accepts_callers
from shop_common.json_body import JsonRoute
from shop_common.problems import problem_responses

ORDER_SERVICE = "order-service"

router = APIRouter(
    prefix="/stock/reservations",
    tags=["stock"],
    route_class=JsonRoute,
    dependencies=[accepts_callers(ORDER_SERVICE)],
)
OrderId = Annotated[
    str, Path(alias="order_id", description="The order's id (a UUID; anything else is 404).")
]
_CALLER_PROBLEMS = {
    401: "No valid credential.",
    403: "The credential was not minted by order-service.",
    404: "The order id is not a UUID.",
}


@router.put(
    "/{order_id}",
    response_model=ReservationPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="reserveStock",
    summary="Reserve an order's stock",
    responses={
        200: {"model": ReservationPublic, "description": "Reserved before with these items."},
        **problem_responses(
            400,
            413,
            415,
            why={
                **_CALLER_PROBLEMS,
                409: "A line asks for more than the stock (`errors` names each), or the "
                "order is reserved already with other items; nothing changed.",
                410: "The order was given up (its reservation released); nothing reserved.",
                422: "Not valid, a product repeated, or a product that does not exist.",
            },
        ),
    },
)
async def reserve_stock(
    order_id: OrderId, data: ReservationCreate, session: SessionDep
) -> Response:
    """Take every line's units from stock, or none; the lines keep the catalog's name,
    sku, price and currency as they are now. A repeat with the same items answers 200
    with the same reservation and changes nothing."""
    reservation = await service.reserve_stock(session, order_id=order_id, items=data.items)
    body = ReservationPublic(
        order_id=reservation.order_id,
        status=reservation.status,
        items=[
            ReservationLinePublic(
                product_id=line.product_id,
                name=line.name,
                sku=line.sku,
                price=cents_to_json(line.price_cents),
                currency=line.currency,
                quantity=line.quantity,
            )
            for line in reservation.lines
        ],
    )
    return Response(
        body.model_dump_json(),
        status_code=status.HTTP_201_CREATED if reservation.created else status.HTTP_200_OK,
        media_type="application/json",
    )


@router.delete(
    "/{order_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    operation_id="releaseStock",
    summary="Release an order's stock",
    response_description="Released (now, before, or never reserved).",
    responses=problem_responses(why=_CALLER_PROBLEMS),
)
async def release_stock(order_id: OrderId, session: SessionDep) -> None:
    """Return the order's reserved units to stock, exactly once however often it is
    called. An order that reserved nothing is marked given up: a reservation for it
    that arrives later gets 410."""
    await service.release_reservation(session, order_id=order_id)
