"""The /products endpoints: validate, call the service, shape the response."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncEngine

from product_service import repository, service
from product_service.dependencies import (
    ActorDep,
    IfMatchDep,
    IfNoneMatchDep,
    ListRequestDep,
    SessionDep,
    parse_list_query,
    require_admin,
    require_user,
)
from product_service.documents import ID, VERSION, page_json, product_json
from product_service.exceptions import ProductNotFound
from product_service.schemas import ProductCreate, ProductPage, ProductPublic, ProductUpdate
from shop_common.database import may_commit_alone
from shop_common.dependencies import get_caller
from shop_common.etags import entity_tag as product_etag
from shop_common.etags import parse_condition
from shop_common.json_body import JsonRoute, request_json
from shop_common.problems import problem_responses
from shop_common.validation import validate_body

router = APIRouter(prefix="/products", tags=["products"], route_class=JsonRoute)

# Bodies can meet the JSON guard (400, 413, 415) and validation (422); writes need a
# signed-in caller (401: the gateway checks first, the service again).
_BODY_PROBLEMS = (400, 401, 413, 415, 422)
ProductId = Annotated[
    str, Path(alias="id", description="The product's id (a UUID; anything else is 404).")
]
_ETAG: dict[str, Any] = {
    "description": "The product's current entity tag, for `If-Match` and `If-None-Match`.",
    "required": True,
    "schema": {"type": "string", "examples": ['"5f0c3a1e9d2b4c7a8e6f1b2c3d4e5f6a-1"']},
}
_BY_ID = {"id": "$response.body#/id"}
# OpenAPI links: what a client (or a stateful fuzzer) can do next with the product.
_LINKS: dict[str, Any] = {
    "GetProduct": {"operationId": "getProduct", "parameters": _BY_ID},
    "UpdateProduct": {
        "operationId": "updateProduct",
        "parameters": {**_BY_ID, "header.If-Match": "$response.header.ETag"},
    },
    "ReplaceProduct": {"operationId": "replaceProduct", "parameters": _BY_ID},
    "DeleteProduct": {"operationId": "deleteProduct", "parameters": _BY_ID},
}


def _product(status_code: int, *, location: bool = False) -> dict[int | str, dict[str, Any]]:
    headers = {"ETag": _ETAG}
    if location:
        headers["Location"] = {
            "description": "The new product's path, `/products/{id}`.",
            "required": True,
            "schema": {
                "type": "string",
                "examples": ["/products/5f0c3a1e-9d2b-4c7a-8e6f-1b2c3d4e5f6a"],
            },
        }
    return {status_code: {"headers": headers, "links": _LINKS}}


_NOT_FOUND = "No product has this id."
_WRITE_PROBLEMS = {
    403: "The caller neither owns the product nor is an ADMIN.",
    404: _NOT_FOUND,
    409: "Another product already has this SKU.",
    412: "`If-Match` names no current ETag of the product; nothing was changed.",
}


_Endpoint = Callable[..., Coroutine[Any, Any, Response]]
# How a lean route calls its endpoint: the arguments taken from the request directly.
_Call = Callable[[_Endpoint, Request], Coroutine[Any, Any, Response]]


def _lean(method: str, path: str, call: _Call, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
    """A route documented from the endpoint's signature like any route, whose requests
    `call` the endpoint itself, without FastAPI's dependency solving and parameter
    validation: most of what a thin FastAPI route costs beyond the query
    (docs/decisions/product-service-read-path.md). Everything outside the route (request
    id, access log, metrics, the gateway credential check, problem handlers) is as for
    any route."""

    class LeanRoute(JsonRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            endpoint = self.endpoint

            async def lean_handler(request: Request) -> Response:
                return await call(endpoint, request)

            return lean_handler

    def register(endpoint: _Endpoint) -> _Endpoint:
        router.add_api_route(
            path, endpoint, methods=[method], route_class_override=LeanRoute, **options
        )
        return endpoint

    return register


async def _call_with_list_query(endpoint: _Endpoint, request: Request) -> Response:
    # The seven query parameters parsed and checked in one pass (dependencies.py).
    response: Response = await endpoint(request, await parse_list_query(request.query_params))
    return response


async def _call_with_id(endpoint: _Endpoint, request: Request) -> Response:
    lines = request.headers.getlist("if-none-match")
    response: Response = await endpoint(request.path_params["id"], request, parse_condition(lines))
    return response


@_lean(
    "GET",
    "",
    _call_with_list_query,
    response_model=ProductPage,
    operation_id="listProducts",
    summary="List products",
    response_description="A page of products and the cursor of the next one.",
    responses=problem_responses(
        why={
            422: "A parameter is not valid (`errors` names it), or the cursor was made "
            "with another sort or other filters."
        }
    ),
)
async def list_products(request: Request, parameters: ListRequestDep) -> Response:
    """A page of products, newest first unless `sort` says otherwise.

    Pass `next_cursor` back as `cursor` for the next page, with the same `sort` and
    filters (another combination gets 422); `next_cursor` is null on the last page.
    """
    # The connection held for the one SELECT only, not by a yield dependency until the
    # response is sent (FastAPI's exit stack per request).
    engine: AsyncEngine = request.app.state.read_engine
    async with engine.connect() as connection:
        page = await service.list_products(connection, request=parameters)
    # Rows straight to JSON bytes (documents.py): no model per row, no response_model pass.
    return Response(page_json(page.items, page.next_cursor), media_type="application/json")


@_lean(
    "GET",
    "/{id}",
    _call_with_id,
    response_model=ProductPublic,
    operation_id="getProduct",
    summary="Get a product",
    response_description="The product, with its current ETag.",
    responses={
        **_product(200),
        304: {
            "description": "Not Modified: `If-None-Match` names the current ETag.",
            "headers": {"ETag": _ETAG},
        },
        **problem_responses(why={404: _NOT_FOUND}),
    },
)
async def get_product(
    product_id: ProductId, request: Request, if_none_match: IfNoneMatchDep
) -> Response:
    """One product, with its `ETag`; 304 when `If-None-Match` matches it (weak comparison)."""
    # The shop's hottest request: one driver round trip on the pool's autocommit side, the
    # row straight to JSON bytes, no session and no response model
    # (docs/decisions/product-service-read-path.md).
    identifier = service.parse_product_id(product_id)
    engine: AsyncEngine = request.app.state.read_engine
    async with engine.connect() as connection:
        row = await repository.read_product(connection, identifier)
    if row is None:
        raise ProductNotFound(_NOT_FOUND)
    etag = product_etag(row[ID], row[VERSION])
    if if_none_match is not None and if_none_match.matches_weakly(etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    return Response(product_json(row), media_type="application/json", headers={"ETag": etag})


async def _call_with_body_and_actor(endpoint: _Endpoint, request: Request) -> Response:
    # In FastAPI's order: the caller first (401 before any body error), then the body.
    actor = await require_user(await get_caller(request))
    data = validate_body(ProductCreate, await request_json(request))
    response: Response = await endpoint(data, actor, request)
    return response


@_lean(
    "POST",
    "",
    _call_with_body_and_actor,
    response_model=ProductPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="createProduct",
    summary="Create a product",
    response_description="The new product; `Location` and `ETag` name it.",
    responses={
        **_product(201, location=True),
        **problem_responses(*_BODY_PROBLEMS, why={409: _WRITE_PROBLEMS[409]}),
    },
)
async def create_product(data: ProductCreate, actor: ActorDep, request: Request) -> Response:
    """Create a product owned by the caller; `Location` and `ETag` name it."""
    # No session dependency: on PostgreSQL the write is one autocommit statement, and a
    # session opened and closed around it cost ~10 % of the request's CPU.
    row = await service.create_product(
        request.app.state.sessionmaker,
        actor=actor,
        data=data,
        autocommit=_one_statement_engine(request),
    )
    headers = {"Location": f"/products/{row[ID]}", "ETag": product_etag(row[ID], row[VERSION])}
    return Response(
        product_json(row), status_code=201, media_type="application/json", headers=headers
    )


def _one_statement_engine(request: Request) -> AsyncEngine | None:
    """The autocommit engine, when this write may be one statement that commits as it
    runs (PostgreSQL, and time enough before the request's deadline)."""
    engine: AsyncEngine | None = request.app.state.one_statement_engine
    if engine is None:
        return None
    timeout = request.app.state.settings.database_statement_timeout_seconds
    return engine if may_commit_alone(timeout) else None


@router.put(
    "/{id}",
    response_model=ProductPublic,
    operation_id="replaceProduct",
    summary="Replace a product",
    response_description="The product as replaced, with its new ETag.",
    responses={**_product(200), **problem_responses(*_BODY_PROBLEMS, why=_WRITE_PROBLEMS)},
)
async def replace_product(
    product_id: ProductId,
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
    "/{id}",
    response_model=ProductPublic,
    operation_id="updateProduct",
    summary="Update a product",
    response_description="The product as changed, with its new ETag.",
    responses={**_product(200), **problem_responses(*_BODY_PROBLEMS, why=_WRITE_PROBLEMS)},
)
async def update_product(
    product_id: ProductId,
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
    "/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    operation_id="deleteProduct",
    summary="Delete a product",
    response_description="Deleted.",
    responses=problem_responses(
        401,
        why={
            403: "Only an ADMIN may delete products.",
            404: _NOT_FOUND,
            412: _WRITE_PROBLEMS[412],
        },
    ),
    dependencies=[Depends(require_admin)],
)
async def delete_product(product_id: ProductId, session: SessionDep, if_match: IfMatchDep) -> None:
    """Delete a product (ADMIN only)."""
    await service.delete_product(session, product_id=product_id, if_match=if_match)
