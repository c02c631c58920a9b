"""Request and response bodies: ProductCreate (POST, PUT), ProductUpdate (PATCH), ProductPublic."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from product_service.currencies import DEFAULT_CURRENCY, ISO_4217_CODES
from product_service.models import Product
from product_service.prices import cents_to_json, price_cents
from shop_common.models import (
    NO_CONTROL_BUT_WHITESPACE_PATTERN,
    LongText,
    StrictModel,
    TrimmedText,
    trimmed_text_pattern,
)

MAX_STOCK = 2_147_483_647
_INTEGRAL_DIGITS = 18  # far above MAX_STOCK: larger values are refused by their sign alone
_BEYOND_ANY_FIELD = 10**_INTEGRAL_DIGITS
PRICE_SCHEMA: dict[str, Any] = {
    "type": "number",
    "minimum": 0,
    "maximum": 1_000_000_000,
    "multipleOf": 0.01,
    "description": "At most 2 decimal places; read and stored exactly, never as a float.",
    "examples": [19.99],
}


def _length(low: int, high: int, unit: str = "characters") -> AfterValidator:
    def check(value: str) -> str:
        if not low <= len(value) <= high:
            raise ValueError(f"must be {low} to {high} {unit}")
        return value

    return AfterValidator(check)


def _valid_unicode(value: str) -> str:
    # Lone surrogates survive JSON decoding (from \ud800 escapes) but are not text: no
    # database takes them, so they are a validation error here rather than a 500 later.
    # The UTF-8 encoder finds them at C speed (a loop over a 1 MB name took ~50 ms).
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def integral(value: object) -> object:
    """A JSON number without a fraction is an integer however it is written (5.0, 5e0)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        return value
    if value.adjusted() >= _INTEGRAL_DIGITS:
        # Never compute with 1e999999999 or a 5,000-digit integer (loads_exact keeps those
        # as Decimal): only the sign matters, and either way it is out of range (422).
        return _BEYOND_ANY_FIELD if value > 0 else -_BEYOND_ANY_FIELD
    if value == value.to_integral_value():
        return int(value)
    return value


def _currency(value: str) -> str:
    if value not in ISO_4217_CODES:
        raise ValueError("must be an ISO 4217 currency code in capitals, such as USD")
    return value


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


Name = Annotated[
    TrimmedText,
    AfterValidator(_valid_unicode),
    _length(1, 200, "characters after trimming"),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "pattern": trimmed_text_pattern(200),
            "description": "1 to 200 characters after trimming; no control characters.",
        }
    ),
]
Description = Annotated[
    LongText,
    AfterValidator(_valid_unicode),
    _length(0, 5000),
    WithJsonSchema(
        {"type": "string", "maxLength": 5000, "pattern": NO_CONTROL_BUT_WHITESPACE_PATTERN}
    ),
]
# The cents of the price; clients send and read `price`, a JSON number.
PriceCents = Annotated[int, BeforeValidator(price_cents), WithJsonSchema(PRICE_SCHEMA)]
Currency = Annotated[
    str,
    AfterValidator(_currency),
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(ISO_4217_CODES),
            "description": "An ISO 4217 currency code, in capitals.",
            "examples": ["USD"],
        }
    ),
]
Stock = Annotated[StrictInt, Field(ge=0, le=MAX_STOCK), BeforeValidator(integral)]
Sku = Annotated[
    TrimmedText,
    AfterValidator(_valid_unicode),
    _length(1, 64, "characters after trimming"),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "pattern": trimmed_text_pattern(64),
            "description": "1 to 64 characters after trimming; unique; no control characters.",
        }
    ),
]
Timestamp = Annotated[
    datetime,
    PlainSerializer(_rfc3339, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
JsonPrice = Annotated[int | float, WithJsonSchema({"type": "number", "examples": [19.99]})]


_EXAMPLE_ID = "5f0c3a1e-9d2b-4c7a-8e6f-1b2c3d4e5f6a"
_EXAMPLE_OWNER = "0d9c8b7a-6f5e-4d3c-9b2a-1f0e9d8c7b6a"
PRODUCT_EXAMPLE: dict[str, Any] = {
    "id": _EXAMPLE_ID,
    "name": "Desk lamp",
    "description": "Warm light, adjustable arm.",
    "price": 19.99,
    "currency": "USD",
    "stock": 5,
    "sku": "LAMP-001",
    "owner_id": _EXAMPLE_OWNER,
    "created_at": "2025-01-31T09:30:00.000000Z",
    "updated_at": "2025-02-01T14:05:12.345678Z",
    "version": 2,
}


def _no_null_defaults(schema: dict[str, Any]) -> None:
    """OpenAPI for PATCH: fields are optional but not nullable, except sku; not empty."""
    for name, field in schema.get("properties", {}).items():
        if name == "sku":
            continue
        field.pop("default", None)
        variants = [v for v in field.pop("anyOf", []) if v.get("type") != "null"]
        if len(variants) == 1:
            field.update(variants[0])
    schema["minProperties"] = 1
    schema["examples"] = [{"price": 17.5}, {"stock": 0, "sku": None}]


class ProductCreate(StrictModel):
    """A whole product: POST creates one, PUT replaces every writable field."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Desk lamp",
                    "description": "Warm light, adjustable arm.",
                    "price": 19.99,
                    "currency": "USD",
                    "stock": 5,
                }
            ]
        }
    )

    name: Name
    description: Description = ""
    price_cents: PriceCents = Field(alias="price")
    currency: Currency = DEFAULT_CURRENCY
    stock: Stock = 0
    sku: Sku | None = None


class ProductUpdate(StrictModel):
    """Any non-empty subset of the writable fields; only `sku` may be null (to clear it)."""

    model_config = ConfigDict(json_schema_extra=_no_null_defaults)

    # None stands for "not given"; an explicit null is refused below (except for sku).
    name: Name | None = None
    description: Description | None = None
    price_cents: PriceCents | None = Field(default=None, alias="price")
    currency: Currency | None = None
    stock: Stock | None = None
    sku: Sku | None = None

    @field_validator("name", "description", "price_cents", "currency", "stock", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> ProductUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class ProductPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [PRODUCT_EXAMPLE]})

    id: uuid.UUID
    name: str
    description: str
    price: JsonPrice
    currency: str
    stock: int
    sku: str | None
    owner_id: uuid.UUID
    created_at: Timestamp
    updated_at: Timestamp
    version: int

    @classmethod
    def of(cls, product: Product) -> ProductPublic:
        return cls(
            id=product.id,
            name=product.name,
            description=product.description,
            price=cents_to_json(product.price_cents),
            currency=product.currency,
            stock=product.stock,
            sku=product.sku,
            owner_id=product.owner_id,
            created_at=product.created_at,
            updated_at=product.updated_at,
            version=product.version,
        )

    @classmethod
    def of_row(cls, row: Mapping[Any, Any]) -> ProductPublic:
        """From the product table's columns (repository.read_product)."""
        return cls(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            price=cents_to_json(row["price_cents"]),
            currency=row["currency"],
            stock=row["stock"],
            sku=row["sku"],
            owner_id=row["owner_id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            version=row["version"],
        )


class ProductPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [PRODUCT_EXAMPLE], "next_cursor": None}]}
    )

    items: list[ProductPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when no item remains."
    )
