"""What the gateway says in the OpenAPI document in its own words (openapi.py assembles).

Each gateway problem is described here next to the rule that causes it, so the document
and the router cannot disagree about who gets a 401, a 403 or a 429: both read the
policy table's Rule.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from api_gateway.policy import Access, Rule, Throttle
from shop_common.problems import PROBLEM_CONTENT_TYPE
from shop_common.service_app import PROBLEM_SCHEMA

BEARER = "bearerAuth"
PROBLEM_MEDIA_TYPE = PROBLEM_CONTENT_TYPE
PROBLEM_REF = "#/components/schemas/Problem"
EXAMPLE_REQUEST_ID = "6f1c2a9e4b7d4e0f9a3c5b8d7e6f1a2b"

INFO: dict[str, Any] = {
    "title": "Shop API",
    "version": "1.0.0",
    "description": (
        "The public API of the shop: accounts and tokens (`/auth`), the product catalogue "
        "(`/products`), orders (`/orders`), and the gateway's own health endpoints. Every "
        "request goes through the API gateway, which checks tokens and roles, applies rate "
        "limits and forwards "
        "the request to the service that owns the path.\n\n"
        "**Authorize.** Register (`POST /auth/register`), log in (`POST /auth/login`) and "
        "send the `access_token` as `Authorization: Bearer <token>`; on this page, paste it "
        "into *Authorize*. An access token lives 15 minutes; `POST /auth/refresh` trades "
        "the refresh token for new ones. Each operation's `x-access` says who may call it: "
        "`public`, `authenticated` or `admin`.\n\n"
        "**Errors** are RFC 9457 problem details (`application/problem+json`) carrying the "
        "request id; a validation failure lists each field in `errors`. When several "
        "apply, the first of 404 (unknown path), 405, 401, 403 (role), 429 (address), "
        "413, 415, 400, 422, 429 (email), 404 (resource), 403 (owner), 412, 409 wins.\n\n"
        "**Conventions.** Bodies are JSON; an unknown body field gets 422, an unknown "
        "query parameter is ignored. Ids are UUIDs, timestamps RFC 3339 in UTC. A trailing "
        "slash makes another, unknown path (404). Every response carries `X-Request-ID`.\n\n"
        "**Events.** Every change of an order or a product is published on NATS JetStream: "
        "see the [AsyncAPI document](/api-docs/asyncapi.json)."
    ),
}
TAGS: list[dict[str, str]] = [
    {"name": "auth", "description": "Accounts, login sessions and tokens (auth-service)."},
    {"name": "products", "description": "The product catalogue (product-service)."},
    {
        "name": "orders",
        "description": "Checkout, payment, shipment and expiry (order-service). The events "
        "every change publishes are in the AsyncAPI document, `/api-docs/asyncapi.json`.",
    },
    {"name": "operations", "description": "The gateway's own liveness, readiness, metrics."},
]
BEARER_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "The `access_token` of `POST /auth/login` or `POST /auth/refresh`.",
}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "This request's id: the client's own when it sent a sane one "
        "(1-128 visible ASCII characters), else a new one; every log line about the "
        "request carries it.",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 128},
    },
    "WWW-Authenticate": {
        "description": 'The Bearer challenge; `error="invalid_token"` when a token was refused.',
        "required": True,
        "schema": {"type": "string", "examples": ['Bearer realm="shop"']},
    },
    "Allow": {
        "description": "The methods this path takes.",
        "required": True,
        "schema": {"type": "string", "examples": ["GET, HEAD"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$", "examples": ["30"]},
    },
}
_STATUS_HEADERS = {"401": ("WWW-Authenticate",), "405": ("Allow",), "429": ("Retry-After",)}
_FORWARDED_STATUS_HEADERS = {**_STATUS_HEADERS, "503": ("Retry-After",)}

REQUEST_ID_PARAMETER: dict[str, Any] = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "Your id for this request (1-128 visible ASCII characters): echoed in "
    "`X-Request-ID` and logged by every service; any other value is replaced by a new id.",
    "schema": {"type": "string"},
}

_LIMITS = {
    Throttle.GENERAL: "Too many requests from this address (`RATE_LIMIT_PER_ADDRESS`).",
    Throttle.LOGIN: "Too many logins from this address, or too many failed logins for "
    "this email from any address (`RATE_LIMIT_LOGIN_PER_*`).",
    Throttle.REGISTER: "Too many registrations from this address or for this email "
    "(`RATE_LIMIT_REGISTER_PER_*`).",
}
_UPSTREAM = {
    "502": "The service answered with something that is not HTTP, or dropped the connection.",
    "503": "No instance of the service accepts connections (or the auth service's keys, "
    "needed to check a token, are unknown); try again after `Retry-After` seconds.",
    "504": "The service did not answer within `UPSTREAM_TIMEOUT` seconds.",
}


def phrase(status: str) -> str:
    try:
        return HTTPStatus(int(status)).phrase
    except ValueError:
        return "Error"


def security(rule: Rule) -> list[dict[str, list[str]]]:
    """Where the router reads a token: required, or optional on public reads."""
    if rule.access is not Access.PUBLIC:
        return [{BEARER: []}]
    return [{}, {BEARER: []}] if rule.reads_token else []


def access_note(rule: Rule) -> str:
    if rule.access is Access.ADMIN:
        return "**Access:** ADMIN only (bearer token)."
    if rule.access is Access.AUTHENTICATED:
        return "**Access:** any signed-in user (bearer token)."
    if rule.reads_token:
        return "**Access:** anyone; a bearer token is optional, but one that is sent must be valid."
    return "**Access:** anyone; an `Authorization` header is ignored here."


def gateway_problems(rule: Rule, *, has_body: bool) -> dict[str, str]:
    """Status -> why the gateway answers it, for one rule of the policy table."""
    problems = {}
    if "{" in rule.template:
        problems["404"] = "No such resource (an id that is not well-formed is 404 too)."
    problems["405"] = "This path does not take that method; `Allow` lists the ones it does."
    if rule.reads_token:
        problems["401"] = (
            "A bearer token was sent and is not valid (malformed, bad signature, expired, "
            "wrong issuer or audience, unknown key id, or its session was revoked)."
            if rule.access is Access.PUBLIC
            else "No bearer token, or it is not valid (malformed, bad signature, expired, "
            "wrong issuer or audience, unknown key id, or its session was revoked)."
        )
    if rule.access is Access.ADMIN:
        problems["403"] = "The token is valid, but its role is not ADMIN."
    if has_body:
        problems["413"] = "The body is larger than the limit (1 MiB by default)."
        problems["415"] = "The body is not `application/json`."
        problems["400"] = "The body is not valid JSON."
        problems["422"] = "The body is not valid; `errors` names each field and why."
    if has_body:
        problems["408"] = "The body did not arrive within 30 s; nothing of it was forwarded."
    problems["431"] = (
        "The request line and header fields are over 32 KiB together, or over 100 fields "
        "(a very long query string counts)."
    )
    problems["429"] = _LIMITS[rule.throttle] + " `Retry-After` says how long to wait."
    problems.update(_UPSTREAM)
    return problems


def response_headers(status: str, *, forwarded: bool = True) -> dict[str, dict[str, Any]]:
    by_status = _FORWARDED_STATUS_HEADERS if forwarded else _STATUS_HEADERS
    names = ("X-Request-ID", *by_status.get(status, ()))
    return {name: HEADERS[name] for name in names}


def problem_example(status: str, description: str) -> dict[str, Any]:
    example: dict[str, Any] = {
        "type": "about:blank",
        "title": phrase(status),
        "status": int(status),
        "detail": description.split(". ")[0].rstrip(".") + ".",
        "request_id": EXAMPLE_REQUEST_ID,
    }
    if status == "422":
        example["errors"] = [{"field": "price", "message": "must have at most 2 decimal places"}]
    return example


def problem_content(status: str, description: str) -> dict[str, Any]:
    return {
        PROBLEM_MEDIA_TYPE: {
            "schema": {"$ref": PROBLEM_REF},
            "example": problem_example(status, description),
        }
    }


def problem_response(status: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": problem_content(status, description)}


def head_of(get: Mapping[str, Any]) -> dict[str, Any]:
    """HEAD: the GET operation's parameters and statuses, headers only."""
    head = copy.deepcopy(dict(get))
    head["operationId"] = f"{get['operationId']}Head"
    head["summary"] = f"{get.get('summary', get['operationId'])} (headers only)"
    head["description"] = "The same as GET, without a body.\n\n" + get.get("description", "")
    for response in head["responses"].values():
        response.pop("content", None)
        response.pop("links", None)
    return head


# The gateway's own endpoints (router.py answers them; never rate limited or forwarded).
OWN_SCHEMAS: dict[str, Any] = {
    "Problem": PROBLEM_SCHEMA,
    "GatewayHealth": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
        "examples": [{"status": "ok"}],
    },
    "GatewayReadiness": {
        "type": "object",
        "required": ["status", "checks", "instances"],
        "properties": {
            "status": {"enum": ["ready", "unavailable"]},
            "checks": {
                "type": "object",
                "description": "Each dependency's state: ok, degraded, unavailable or "
                "not_ready (redis: ok or degraded, never a failure).",
                "additionalProperties": {"type": "string"},
            },
            "instances": {
                "type": "object",
                "description": "Each upstream instance's state, by service and URL.",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                },
            },
        },
        "examples": [
            {
                "status": "ready",
                "checks": {
                    "auth-service": "ok",
                    "product-service": "ok",
                    "order-service": "ok",
                },
                "instances": {
                    "auth-service": {"http://127.0.0.1:5001": "ok"},
                    "product-service": {"http://127.0.0.1:5002": "ok"},
                    "order-service": {"http://127.0.0.1:5003": "ok"},
                },
            }
        ],
    },
}


def _own(
    operation_id: str, summary: str, description: str, responses: dict[str, Any]
) -> dict[str, Any]:
    responses = {**responses, "405": problem_response("405", "Only GET and HEAD; see `Allow`.")}
    for status, response in responses.items():
        response["headers"] = response_headers(status, forwarded=False)
    get = {
        "tags": ["operations"],
        "summary": summary,
        "description": description + "\n\n**Access:** anyone; never rate limited.",
        "operationId": operation_id,
        "parameters": [REQUEST_ID_PARAMETER],
        "security": [],
        "x-access": Access.PUBLIC.value,
        "responses": dict(sorted(responses.items())),
    }
    return {"get": get, "head": head_of(get)}


def _json(schema: str, description: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


OWN_PATHS: dict[str, dict[str, Any]] = {
    "/health": _own(
        "getHealth",
        "Liveness",
        "200 while the gateway process runs.",
        {"200": _json("GatewayHealth", "The gateway runs.")},
    ),
    "/ready": _own(
        "getReadiness",
        "Readiness",
        "200 while the gateway itself can serve (its settings and the auth keys are "
        "loaded), answered from what it already knows; the body names each upstream, each "
        "instance and Redis with its state. A service with no ready instance does not make "
        "the gateway not-ready: that service's routes answer 503 at once.",
        {
            "200": _json("GatewayReadiness", "The gateway can serve."),
            "503": _json("GatewayReadiness", "The gateway cannot serve (no auth keys yet)."),
        },
    ),
    "/metrics": _own(
        "getMetrics",
        "Prometheus metrics",
        "Request counts and durations by route template, upstream errors and latency.",
        {
            "200": {
                "description": "Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    ),
}
