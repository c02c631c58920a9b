"""Liveness and readiness endpoints, the same shape in every service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shop_common.shutdown import draining

ReadyCheck = Callable[[], Awaitable[dict[str, str]]]
HEALTHY_STATES = frozenset({"ok", "degraded"})


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


def health_router(check_ready: ReadyCheck) -> APIRouter:
    """`check_ready` maps each dependency to "ok", "degraded" or a failure word."""
    router = APIRouter(tags=["operations"])

    @router.get("/health", response_model=Health)
    async def health() -> Health:
        """200 while the process runs."""
        return Health(status="ok")

    @router.get(
        "/ready",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A dependency is not ready"}},
    )
    async def ready() -> JSONResponse:
        """200 when every dependency answers, else 503; the body names each one's state.

        503 with status "draining" once the process got its stop signal."""
        if draining():
            return JSONResponse({"status": "draining", "checks": {}}, status_code=503)
        checks = await check_ready()
        ok = all(state in HEALTHY_STATES for state in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    return router
