"""The /products endpoints: validate, call the service, shape the response."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from product_service import service
from product_service.dependencies import (
    ActorDep,
    IfMatchDep,
    IfNoneMatchDep,
    ListRequestDep,
    SessionDep,
    require_admin,
)
from product_service.schemas import ProductCreate, ProductPage, ProductPublic, ProductUpdate
from shop_common.json_body import JsonRoute
from shop_common.problems import problem_responses

router = APIRouter(prefix="/products", tags=["products"], route_class=JsonRoute)

# Every route can meet the gateway guard (401); bodies can meet the JSON guard.
_BODY_PROBLEMS = (400, 401, 413, 415, 422)


@router.get("", response_model=ProductPage, responses=problem_responses(401, 422))
async def list_products(session: SessionDep, request: ListRequestDep) -> ProductPage:
    """A page of products, newest first unless `sort` says otherwise.

    Pass `next_cursor` back as `cursor` for the next page, with the same `sort` and
    filters (another combination gets 422); `next_cursor` is null on the last page.
    """
    page = await service.list_products(session, request=request)
    return ProductPage(
        items=[ProductPublic.of(product) for product in page.items],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/{product_id}",
    response_model=ProductPublic,
    responses={
        304: {"description": "Not Modified: `If-None-Match` names the current ETag"},
        **problem_responses(401, 404),
    },
)
async def get_product(
    product_id: str, session: SessionDep, if_none_match: IfNoneMatchDep, response: Response
) -> ProductPublic | Response:
    """One product, with its `ETag`; 304 when `If-None-Match` matches it (weak comparison)."""
    product = await service.get_product(session, product_id=product_id)
    etag = service.etag_of(product)
    if if_none_match is not None and if_none_match.matches_weakly(etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return ProductPublic.of(product)


@router.post(
    "",
    response_model=ProductPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*_BODY_PROBLEMS, 409),
)
async def create_product(
    data: ProductCreate, actor: ActorDep, session: SessionDep, response: Response
) -> ProductPublic:
    """Create a product owned by the caller; `Location` and `ETag` name it."""
    product = await service.create_product(session, actor=actor, data=data)
    response.headers["Location"] = f"/products/{product.id}"
    response.headers["ETag"] = service.etag_of(product)
    return ProductPublic.of(product)


@router.put(
    "/{product_id}",
    response_model=ProductPublic,
    responses=problem_responses(*_BODY_PROBLEMS, 403, 404, 409, 412),
)
async def replace_product(
    product_id: str,
    data: ProductCreate,
    actor: ActorDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> ProductPublic:
    """Replace every writable field (owner or ADMIN); fields not given get their defaults."""
    product = await service.replace_product(
        session, product_id=product_id, actor=actor, data=data, if_match=if_match
    )
    response.headers["ETag"] = service.etag_of(product)
    return ProductPublic.of(product)


@router.patch(
    "/{product_id}",
    response_model=ProductPublic,
    responses=problem_responses(*_BODY_PROBLEMS, 403, 404, 409, 412),
)
async def update_product(
    product_id: str,
    data: ProductUpdate,
    actor: ActorDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> ProductPublic:
    """Change the fields given (owner or ADMIN); `null` clears `sku`."""
    product = await service.update_product(
        session, product_id=product_id, actor=actor, data=data, if_match=if_match
    )
    response.headers["ETag"] = service.etag_of(product)
    return ProductPublic.of(product)


@router.delete(
    "/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 412),
    dependencies=[Depends(require_admin)],
)
async def delete_product(product_id: str, session: SessionDep, if_match: IfMatchDep) -> None:
    """Delete a product (ADMIN only)."""
    await service.delete_product(session, product_id=product_id, if_match=if_match)
