"""A product write the gateway sent again, answered as its first attempt was.

When the instance that got a write died with it in flight, the gateway sends it to another
instance (shop_common.retried_writes). If the first attempt committed, its event is in
the outbox and holds everything its answer held: the product as the API showed it (the
same bytes: documents.product_json and the event's data are one orjson call with the same
options), or, for a delete, nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp

from shop_common.etags import entity_tag

_STATUS = {"product.created": 201, "product.updated": 200}


def answer_of_first_attempt(events: Sequence[tuple[str, Any]]) -> ASGIApp | None:
    """The response of the committed write that recorded `events`; None when none of
    them is a product write's (the request is then applied now)."""
    for kind, data in events:
        if kind == "product.deleted":
            return Response(status_code=204)
        status = _STATUS.get(kind)
        if status is None:
            continue
        document = orjson.loads(data)
        headers = {"ETag": entity_tag(uuid.UUID(document["id"]), document["version"])}
        if status == 201:
            headers["Location"] = f"/products/{document['id']}"
        body = data.encode() if isinstance(data, str) else data
        return Response(body, status_code=status, media_type="application/json", headers=headers)
    return None
