"""Placing an order: the Idempotency-Key claim, the stock reservation, the answer kept.

1. One transaction claims the key and creates the order, `reserving` (never shown).
   Of two requests with one key, the second's insert conflicts: it gets the first
   answer, or 409 while the first still runs, or 422 for another body.
2. product-service reserves every line or none (PUT, idempotent per order id).
3. One transaction makes the order `pending_payment` with the catalog's lines, records
   `order.placed` in the outbox and stores the answer under the key; then 201.
A checkout that cannot finish is given up: the order becomes `aborted` with an
`order.aborted` event (product-service releases whatever was reserved and refuses a
late reservation for it), the key is freed, the client gets 503. A process that dies
mid-checkout leaves the order `reserving`; the sweeper gives it up the same way.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from order_service import repository
from order_service.events import record_order_event
from order_service.exceptions import (
    CheckoutInProgress,
    IdempotencyKeyReused,
    StockUnavailable,
)
from order_service.metrics import CHECKOUTS
from order_service.models import IdempotencyKey, OrderLine, PurchaseOrder, Status
from order_service.schemas import OrderCreate, order_document
from order_service.service import Actor, etag_of, items_of
from order_service.stock import Refusal, ReservedLine, StockCallFailed, StockClient
from shop_common.database import is_unavailable
from shop_common.deadline import RequestDeadlinePassed, no_deadline
from shop_common.problems import PROBLEM_CONTENT_TYPE, problem_body

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """A response to send, and to replay for the same key: status, headers, body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


def request_hash(data: OrderCreate) -> str:
    """The body as validated (whitespace and number spelling do not make it another)."""
    canonical = orjson.dumps(data.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


async def place_order(
    session: AsyncSession,
    stock: StockClient,
    *,
    actor: Actor,
    key: str,
    data: OrderCreate,
    payment_timeout: float,
) -> Answer:
    fingerprint = request_hash(data)
    now = datetime.now(UTC)
    order = PurchaseOrder(
        id=uuid.uuid4(),
        user_id=actor.user_id,
        status=Status.RESERVING,
        total_cents=0,
        lines=[],  # loaded (empty): the lines are added once the stock is reserved
        note=data.note,
        created_at=now,
        updated_at=now,
        version=1,
    )
    claim = IdempotencyKey(
        user_id=actor.user_id, key=key, request_hash=fingerprint, order_id=order.id, created_at=now
    )
    try:
        await repository.add_checkout(session, order, claim)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        CHECKOUTS.labels("replayed").inc()
        return await _earlier_answer(session, actor=actor, key=key, fingerprint=fingerprint)

    lines = [(line.product_id, line.quantity) for line in data.items]
    try:
        outcome = await stock.reserve(order.id, lines, caller=actor.as_caller())
    except StockCallFailed as exc:
        logger.warning("checkout %s: reservation failed: %s", order.id, exc)
        await give_up(session, stock, order_id=order.id, actor=actor)
        CHECKOUTS.labels("unavailable").inc()
        raise StockUnavailable("The stock could not be reserved now; nothing was placed.") from None

    if isinstance(outcome, Refusal):
        answer = _problem_answer(outcome.status, outcome.errors)
    elif len({line.currency for line in outcome}) > 1:
        answer = _problem_answer(422, _currency_errors(outcome))
    else:
        try:
            answer = await _complete(
                session, order, claim, outcome, payment_timeout=payment_timeout
            )
        except Exception as exc:
            # The database failed, or the request's deadline passed before the commit
            # (the gateway has answered 504 or is about to): nothing was placed; undo.
            if not (is_unavailable(exc) or isinstance(exc, RequestDeadlinePassed)):
                raise
            await session.rollback()
            await give_up(session, stock, order_id=order.id, actor=actor)
            CHECKOUTS.labels("unavailable").inc()
            raise
        CHECKOUTS.labels("placed").inc()
        return answer
    # Refused: nothing is held by this order (mixed currencies: released below); the
    # answer is kept under the key, so a repeat gets it again.
    await _finish_refused(session, order, claim, answer, released=isinstance(outcome, list))
    CHECKOUTS.labels("refused").inc()
    if isinstance(outcome, list):
        await stock.release(order.id, caller=actor.as_caller())
    return answer


async def _complete(
    session: AsyncSession,
    order: PurchaseOrder,
    claim: IdempotencyKey,
    reserved: list[ReservedLine],
    *,
    payment_timeout: float,
) -> Answer:
    order.lines = [
        OrderLine(
            line_no=number,
            product_id=line.product_id,
            name=line.name,
            sku=line.sku,
            unit_price_cents=line.unit_price_cents,
            quantity=line.quantity,
            line_total_cents=line.unit_price_cents * line.quantity,
        )
        for number, line in enumerate(reserved)
    ]
    order.currency = reserved[0].currency
    order.total_cents = sum(line.line_total_cents for line in order.lines)
    order.status = Status.PENDING_PAYMENT
    order.expires_at = order.created_at + timedelta(seconds=payment_timeout)
    order.updated_at = order.created_at
    session.add(order)
    await session.flush()
    await record_order_event(session, order, "placed", items=items_of(order))
    answer = Answer(
        201,
        {
            "Content-Type": "application/json",
            "Location": f"/orders/{order.id}",
            "ETag": etag_of(order),
        },
        orjson.dumps(order_document(order)),
    )
    _keep(claim, answer)
    session.add(claim)
    await session.commit()
    return answer


async def _finish_refused(
    session: AsyncSession,
    order: PurchaseOrder,
    claim: IdempotencyKey,
    answer: Answer,
    *,
    released: bool,
) -> None:
    order.status = Status.ABORTED
    order.updated_at = datetime.now(UTC)
    session.add(order)
    if released:
        await record_order_event(session, order, "aborted")
    _keep(claim, answer)
    session.add(claim)
    await session.commit()


async def give_up(
    session: AsyncSession, stock: StockClient, *, order_id: uuid.UUID, actor: Actor | None
) -> bool:
    """Abort a checkout still `reserving` (once, whoever calls): `order.aborted` releases
    any stock it holds, and its key is freed for a retry. False when it was not reserving.

    Undo, not the client's write: it commits even past the request's deadline (which
    refuses the client's own commit, shop_common.deadline).
    """
    with no_deadline():
        return await _give_up(session, stock, order_id=order_id, actor=actor)


async def _give_up(
    session: AsyncSession, stock: StockClient, *, order_id: uuid.UUID, actor: Actor | None
) -> bool:
    try:
        aborted = await repository.update_order(
            session,
            order_id,
            from_statuses=(Status.RESERVING,),
            expected_version=None,
            values={"status": Status.ABORTED, "updated_at": datetime.now(UTC)},
        )
        if aborted:
            order = await repository.get_order(session, order_id)
            assert order is not None
            await record_order_event(session, order, "aborted")
            await repository.delete_keys_of_order(session, order_id)
        await session.commit()
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        # The database is away: the sweeper gives the checkout up once it is back.
        logger.warning("checkout %s: not aborted now (%s); the sweeper will", order_id, exc)
        return False
    if aborted:
        await stock.release(order_id, caller=actor.as_caller() if actor else None)
    return aborted


async def _earlier_answer(
    session: AsyncSession, *, actor: Actor, key: str, fingerprint: str
) -> Answer:
    claim = await repository.get_idempotency_key(session, actor.user_id, key)
    await session.commit()
    if claim is None:  # freed by a checkout given up a moment ago
        raise CheckoutInProgress("A request with this Idempotency-Key was just given up; retry.")
    if claim.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with another request body.",
            errors=[{"field": "header.Idempotency-Key", "message": "used with another body"}],
        )
    if claim.response_status is None:
        raise CheckoutInProgress("A request with this Idempotency-Key is still being processed.")
    return Answer(
        claim.response_status,
        orjson.loads(claim.response_headers or "{}"),
        (claim.response_body or "").encode(),
    )


def _keep(claim: IdempotencyKey, answer: Answer) -> None:
    claim.response_status = answer.status
    claim.response_headers = orjson.dumps(answer.headers).decode()
    claim.response_body = answer.body.decode()


def _problem_answer(status: int, errors: list[dict[str, str]]) -> Answer:
    detail = {
        409: "Some lines ask for more than the product's stock; nothing was reserved.",
        422: "The order is not valid.",
    }.get(status, "The order was refused.")
    headers = {"Content-Type": PROBLEM_CONTENT_TYPE}
    return Answer(status, headers, problem_body(status, detail=detail, errors=errors))


def _currency_errors(reserved: list[ReservedLine]) -> list[dict[str, str]]:
    first = reserved[0].currency
    return [
        {
            "field": f"items.{number}.product_id",
            "message": f"is priced in {line.currency}, the order's first line in {first}",
        }
        for number, line in enumerate(reserved)
        if line.currency != first
    ]
