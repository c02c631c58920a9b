"""Routes name the minters they accept; the guard holds every other minter off them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from shop_common.callers import accepts_callers, credential_verifier
from shop_common.credential import CREDENTIAL_HEADER, Caller, CredentialSigner
from shop_common.service_app import install_service_defaults
from shop_common.settings import ServiceSettings
from shop_common.testing import (
    GatewayKeys,
    binding_of,
    write_credential_keys,
    write_gateway_keys,
)

pytestmark = pytest.mark.anyio


def _app(settings: ServiceSettings, callers: tuple[str, ...]) -> FastAPI:
    app = FastAPI(redirect_slashes=False)
    internal = APIRouter(prefix="/internal", dependencies=[accepts_callers("order-service")])

    @app.get("/public")
    async def public(request: Request) -> dict[str, str]:
        return {"issuer": request.state.caller.issuer}

    @app.post("/stock", dependencies=[accepts_callers("order-service", "api-gateway")])
    async def stock(request: Request) -> dict[str, str]:
        return {"issuer": request.state.caller.issuer}

    @internal.get("/reservations/{rid}")
    async def reservation(rid: str, request: Request) -> dict[str, str]:
        return {"issuer": request.state.caller.issuer}

    app.include_router(internal)
    verifier = credential_verifier(settings, audience="svc", callers=callers)
    install_service_defaults(app, settings=settings, verifier=verifier)
    return app


class _As(httpx.Auth):
    """Mints for each request with `signer`, as that minter's service client does."""

    def __init__(self, signer: CredentialSigner) -> None:
        self.signer = signer

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-request-id"] = "rid-1"
        request.headers[CREDENTIAL_HEADER] = self.signer.mint(
            audience="svc", caller=Caller(None, None), request=binding_of(request, "rid-1")
        )
        yield request


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    gateway: GatewayKeys = write_gateway_keys(tmp_path)
    order = write_credential_keys(tmp_path, "order-service")
    other = write_credential_keys(tmp_path, "other-service")
    app = _app(ServiceSettings(data_dir=tmp_path), ("order-service",))
    transport = httpx.ASGITransport(app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t", auth=_As(gateway.signer)) as g,
        httpx.AsyncClient(transport=transport, base_url="http://t", auth=_As(order)) as o,
        httpx.AsyncClient(transport=transport, base_url="http://t", auth=_As(other)) as x,
    ):
        yield {"api-gateway": g, "order-service": o, "other-service": x}


@pytest.mark.parametrize(
    ("minter", "method", "path", "status"),
    [
        pytest.param("api-gateway", "GET", "/public", 200, id="gateway-on-default"),
        pytest.param("order-service", "GET", "/public", 403, id="service-on-default"),
        pytest.param("api-gateway", "POST", "/stock", 200, id="gateway-on-both"),
        pytest.param("order-service", "POST", "/stock", 200, id="service-on-both"),
        pytest.param("order-service", "GET", "/internal/reservations/r1", 200, id="router-level"),
        pytest.param("api-gateway", "GET", "/internal/reservations/r1", 403, id="gateway-refused"),
        pytest.param("other-service", "POST", "/stock", 401, id="unknown-minter"),
    ],
)
async def test_a_route_accepts_exactly_the_minters_it_names(
    clients: dict[str, httpx.AsyncClient], minter: str, method: str, path: str, status: int
) -> None:
    body: dict[str, str] | None = {} if method == "POST" else None
    response = await clients[minter].request(method, path, json=body)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json() == {"issuer": minter}
    else:
        assert response.headers["content-type"] == "application/problem+json"


def test_a_route_naming_a_minter_without_its_key_stops_the_start(tmp_path: Path) -> None:
    write_gateway_keys(tmp_path)
    write_credential_keys(tmp_path, "order-service")
    app = _app(ServiceSettings(data_dir=tmp_path), callers=())
    with pytest.raises(ValueError, match="order-service"):
        app.build_middleware_stack()  # what the server's first (lifespan) message does


def test_a_missing_public_key_is_named_when_the_verifier_is_built(tmp_path: Path) -> None:
    write_gateway_keys(tmp_path)
    with pytest.raises(OSError, match="order-service"):
        credential_verifier(
            ServiceSettings(data_dir=tmp_path), audience="svc", callers=("order-service",)
        )
