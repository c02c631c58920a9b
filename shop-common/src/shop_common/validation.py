"""A request body validated by the route itself, with FastAPI's 422 errors.

For the few hot routes that skip FastAPI's dependency solving (a lean route): the same
model, the same pydantic messages, the same `loc` (`("body", field, ...)`) as FastAPI's
`request_body_to_args` gives a single, non-embedded body parameter, so the problem
handler answers exactly as it would for any route.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from shop_common.json_body import NO_BODY

Model = TypeVar("Model", bound=BaseModel)


def validate_body(model: type[Model], data: Any) -> Model:
    """`data` (the parsed JSON, or json_body.NO_BODY) as a `model`; else
    RequestValidationError, as FastAPI raises it for a body parameter of that model."""
    if data is NO_BODY:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    try:
        return model.model_validate(data, from_attributes=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None
