"""One trace from POST /orders through order-service's relay to product-service's consumer:
both apps in this process (uvicorn on spare ports), spans in an in-memory exporter,
PostgreSQL and a private NATS as in the other tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from order_service.config import Settings as OrderSettings
from order_service.main import create_app as create_order_app
from product_service.config import Settings as ProductSettings
from product_service.main import create_app as create_product_app
from shop_common.tracing import Tracing
from tests.orders.conftest import OrderSystem, eventually, key_headers, order_body
from testsupport.processes import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
GATEWAY_SPAN = 0xB7AD6B7169203331


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_one_trace_runs_from_the_checkout_through_the_relay_to_the_consumer(
    system: OrderSystem, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    common: dict[str, Any] = {
        "data_dir": tmp_path,
        "shop_testing": True,
        "nats_url": system.nats.url,
    }
    product_port, order_port = free_port(), free_port()
    product_app = create_product_app(
        ProductSettings(
            product_port=product_port, product_database_url=system.product_db, **common
        ),
        tracing=tracing,
    )
    order_app = create_order_app(
        OrderSettings(
            order_port=order_port,
            order_database_url=system.order_db,
            product_service_url=f"http://127.0.0.1:{product_port}",
            **common,
        ),
        tracing=tracing,
    )
    async with serving(product_app, product_port) as product_url, serving(order_app, order_port):
        async with httpx.AsyncClient(base_url=product_url, auth=system.keys.auth()) as client:
            created = await client.post(
                "/products",
                headers=system.admin("product-service"),
                json={"name": "Lamp", "price": 10, "stock": 3},
            )
            assert created.status_code == 201, created.text
        product_id = created.json()["id"]
        exporter.clear()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{order_port}", auth=system.keys.auth(), timeout=30
        ) as client:
            headers = {**key_headers(system.buyer()), "traceparent": TRACEPARENT}
            placed = await client.post(
                "/orders", headers=headers, json=order_body([(product_id, 1)])
            )
            assert placed.status_code == 201, placed.text

        async def consumed() -> bool:
            return bool(named(exporter, "process orders.placed"))

        await eventually(consumed, 30, "product-service consumed order.placed")
    provider.shutdown()

    (request,) = named(exporter, "POST /orders")
    (reservation,) = named(exporter, "PUT /stock/reservations/{order_id}")
    (publish,) = named(exporter, "publish orders.placed")
    (process,) = named(exporter, "process orders.placed")
    assert request.kind is SpanKind.SERVER and reservation.kind is SpanKind.SERVER
    assert publish.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    # One trace, the gateway's (its traceparent on the request), continued everywhere.
    spans = [request, reservation, publish, process]
    assert {s.context.trace_id for s in spans} == {TRACE_ID}
    assert request.parent is not None and request.parent.span_id == GATEWAY_SPAN
    # The reservation call and the relay's publish are children of the request (the
    # relay's through the outbox row's traceparent); the consumer's of the publish.
    assert reservation.parent is not None
    assert reservation.parent.span_id == request.context.span_id
    assert publish.parent is not None and publish.parent.span_id == request.context.span_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
