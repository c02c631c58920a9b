"""Problems product-service answers with (all are shop_common Problems).

Problem
  (401 for a write without a signed-in caller: shop_common.dependencies.AuthenticationRequired)
  AdminRequired            403  DELETE by a caller who is not ADMIN
  NotProductOwner          403  PUT/PATCH by a caller who neither owns the product nor is ADMIN
  ProductNotFound          404  no such product (also a malformed id in the path)
  PreconditionFailed       412  If-Match names no current ETag; nothing was changed
  SkuAlreadyUsed           409  another product has this SKU
  InvalidListQuery         422  a bad GET /products parameter, with "errors"
  ReservationNotFound      404  a malformed order id in /stock/reservations/{order_id}
  InvalidReservation       422  a product repeated, or unknown, in a reservation ("errors")
  StockShort               409  lines asking for more than the stock ("errors"); nothing reserved
  ReservationConflict      409  the order is reserved already, with other items
  ReservationReleased      410  the order was given up: its reservation is released
"""

from __future__ import annotations

from shop_common.problems import Problem


class AdminRequired(Problem):
    status = 403


class NotProductOwner(Problem):
    status = 403


class ProductNotFound(Problem):
    status = 404


class PreconditionFailed(Problem):
    status = 412


class SkuAlreadyUsed(Problem):
    status = 409


class InvalidListQuery(Problem):
    status = 422


class ReservationNotFound(Problem):
    status = 404


class InvalidReservation(Problem):
    status = 422


class StockShort(Problem):
    status = 409


class ReservationConflict(Problem):
    status = 409


class ReservationReleased(Problem):
    status = 410
