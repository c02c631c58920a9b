"""Problems order-service answers with (all are shop_common Problems).

Problem
  (401 for no signed-in caller: shop_common.dependencies.AuthenticationRequired)
  (400 for a missing or malformed Idempotency-Key is main.py's validation handler)
  AdminRequired              403  payment or shipment by a caller who is not ADMIN
  OrderNotFound              404  no such order, or someone else's (also a malformed id)
  PreconditionFailed         412  If-Match names no current ETag; nothing was changed
  TransitionNotAllowed       409  the action is not allowed from the order's status
  StockShort                 409  a line asks for more than the product's stock; `errors`
  CheckoutInProgress         409  the same Idempotency-Key is still being processed
  InvalidOrder               422  a line names no product, or lines in several currencies
  IdempotencyKeyReused       422  the key was used with another body
  InvalidListQuery           422  a bad GET /orders parameter, with "errors"
  StockUnavailable           503  product-service did not answer the reservation; nothing placed
"""

from __future__ import annotations

from shop_common.problems import Problem

RETRY_AFTER_SECONDS = "2"


class OrderNotFound(Problem):
    status = 404


class PreconditionFailed(Problem):
    status = 412


class TransitionNotAllowed(Problem):
    status = 409


class StockShort(Problem):
    status = 409


class CheckoutInProgress(Problem):
    status = 409
    headers = {"Retry-After": "1"}


class InvalidOrder(Problem):
    status = 422


class IdempotencyKeyReused(Problem):
    status = 422


class InvalidListQuery(Problem):
    status = 422


class StockUnavailable(Problem):
    status = 503
    headers = {"Retry-After": RETRY_AFTER_SECONDS}


class AdminRequired(Problem):
    status = 403
