"""product-service's stock reservations, as order-service calls them.

    PUT    /stock/reservations/{order_id}   reserve every line or none (201, 200 repeated)
    DELETE /stock/reservations/{order_id}   return the stock, once (204)

Calls carry order-service's own credential (product-service accepts it on these routes
only), the request id and the trace context.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from order_service.money import cents_of
from shop_common.credential import Caller
from shop_common.json_body import loads_exact
from shop_common.service_client import ServiceCallError, ServiceClient

logger = logging.getLogger(__name__)


class StockCallFailed(Exception):
    """No usable answer: the reservation may or may not exist (the checkout is given up)."""


@dataclass(frozen=True, slots=True)
class ReservedLine:
    product_id: uuid.UUID
    name: str
    sku: str | None
    unit_price_cents: int
    currency: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """product-service refused and reserved nothing: 409 (short lines) or 422 (unknown)."""

    status: int
    errors: list[dict[str, str]]


class StockClient:
    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def reserve(
        self, order_id: uuid.UUID, lines: Sequence[tuple[uuid.UUID, int]], *, caller: Caller
    ) -> list[ReservedLine] | Refusal:
        body = {"items": [{"product_id": str(p), "quantity": q} for p, q in lines]}
        try:
            response = await self._client.request(
                "PUT", f"/stock/reservations/{order_id}", json=body, caller=caller
            )
        except ServiceCallError as exc:
            raise StockCallFailed(str(exc)) from exc
        if response.status in (200, 201):
            try:
                return _reserved_lines(loads_exact(response.body))
            except (ValueError, KeyError, TypeError) as exc:
                raise StockCallFailed(f"malformed reservation: {exc}") from exc
        if response.status in (409, 422):
            try:
                errors = loads_exact(response.body).get("errors") or []
            except (ValueError, AttributeError):
                errors = []
            return Refusal(response.status, [_error(e) for e in errors if isinstance(e, dict)])
        raise StockCallFailed(f"reservation answered {response.status}")

    async def release(self, order_id: uuid.UUID, *, caller: Caller | None = None) -> bool:
        """True once product-service confirmed; False when it could not be reached (the
        order's event releases the stock anyway)."""
        try:
            response = await self._client.request(
                "DELETE", f"/stock/reservations/{order_id}", caller=caller
            )
        except ServiceCallError as exc:
            logger.info("stock release for %s deferred to the event: %s", order_id, exc)
            return False
        return response.status == 204

    async def close(self) -> None:
        await self._client.close()


def _reserved_lines(document: Any) -> list[ReservedLine]:
    return [
        ReservedLine(
            product_id=uuid.UUID(str(item["product_id"])),
            name=str(item["name"]),
            sku=None if item.get("sku") is None else str(item["sku"]),
            unit_price_cents=cents_of(item["price"]),
            currency=str(item["currency"]),
            quantity=int(item["quantity"]),
        )
        for item in document["items"]
    ]


def _error(entry: dict[str, Any]) -> dict[str, str]:
    return {"field": str(entry.get("field", "items")), "message": str(entry.get("message", ""))}
