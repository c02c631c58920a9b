"""The AsyncAPI document: AsyncAPI 3 in shape, served by the gateway, linked from the
Swagger page, and naming every event the services publish (their own lists)."""

from __future__ import annotations

from typing import Any

import orjson

from api_gateway.asyncapi import ASYNCAPI_PATH, DOCUMENT, EVENTS, asyncapi_document
from order_service.events import KINDS as ORDER_KINDS

PRODUCT_EVENTS = {
    "product.created",
    "product.updated",
    "product.deleted",
    "product.stock_reserved",
    "product.stock_released",
}


def test_every_event_the_services_publish_is_documented() -> None:
    documented = {event_type for event_type, *_ in EVENTS}
    assert documented == {f"order.{kind}" for kind in ORDER_KINDS} | PRODUCT_EVENTS


def test_the_document_has_a_channel_and_an_operation_per_event() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    assert len(document["channels"]) == len(EVENTS) == len(document["operations"])
    for operation in document["operations"].values():
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        assert channel in document["channels"]
        assert operation["action"] == "send" and operation["x-publisher"]
    for message in document["components"]["messages"].values():
        assert message["payload"]["properties"]["data"]["type"] == "object"
    assert orjson.loads(DOCUMENT) == document


def test_the_gateway_serves_it_and_the_swagger_page_links_it(docs: Any) -> None:
    with docs.client() as client:
        response = client.get(ASYNCAPI_PATH)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == asyncapi_document()
    assert ASYNCAPI_PATH in docs.document()["info"]["description"]
