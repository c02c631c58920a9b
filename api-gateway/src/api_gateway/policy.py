"""The one table of public routes: method + path template -> access level and upstream.

Everything the gateway forwards is listed here and nothing else is: an unknown path is
404 without forwarding, a known path with another method 405. Matching is a dict lookup
for static paths; for `/x/{id}` a dict lookup on the parent path plus one check of the
last segment; for `/x/{id}/action` a lookup on the parent and the action plus one check
of the id segment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Access(StrEnum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    ADMIN = "admin"


class Service(StrEnum):
    """An upstream; the value is its name and the audience of its gateway credential."""

    AUTH = "auth-service"
    PRODUCT = "product-service"
    ORDER = "order-service"


class Throttle(StrEnum):
    """Which per-address limit a route counts against (login and register have their
    own, and per-email limits too); the general one is RATE_LIMIT_PER_ADDRESS."""

    GENERAL = "general"
    LOGIN = "login"
    REGISTER = "register"


@dataclass(frozen=True, slots=True)
class Rule:
    method: str
    template: str
    access: Access
    service: Service
    # False where the body is the credential (login, refresh, ...): a stale access token
    # a client still sends there is ignored, so it can always log in or refresh again.
    reads_token: bool = True
    throttle: Throttle = Throttle.GENERAL
    # A write the service applies at most once however often it is sent: product writes
    # record the credential's jti with their event (shop_common.retried_writes), and
    # POST /orders carries the client's Idempotency-Key. When its instance dies with it
    # in flight, it is sent to another instance instead of being answered 502.
    resendable: bool = False


RULES: tuple[Rule, ...] = (
    Rule(
        "POST",
        "/auth/register",
        Access.PUBLIC,
        Service.AUTH,
        reads_token=False,
        throttle=Throttle.REGISTER,
    ),
    Rule(
        "POST",
        "/auth/login",
        Access.PUBLIC,
        Service.AUTH,
        reads_token=False,
        throttle=Throttle.LOGIN,
    ),
    Rule("POST", "/auth/refresh", Access.PUBLIC, Service.AUTH, reads_token=False),
    Rule("POST", "/auth/logout", Access.PUBLIC, Service.AUTH, reads_token=False),
    Rule("GET", "/auth/jwks.json", Access.PUBLIC, Service.AUTH, reads_token=False),
    Rule("GET", "/auth/me", Access.AUTHENTICATED, Service.AUTH),
    Rule("GET", "/auth/users", Access.ADMIN, Service.AUTH),
    Rule("PATCH", "/auth/users/{id}", Access.ADMIN, Service.AUTH),
    Rule("GET", "/products", Access.PUBLIC, Service.PRODUCT),
    Rule("POST", "/products", Access.AUTHENTICATED, Service.PRODUCT, resendable=True),
    Rule("GET", "/products/{id}", Access.PUBLIC, Service.PRODUCT),
    Rule("PUT", "/products/{id}", Access.AUTHENTICATED, Service.PRODUCT, resendable=True),
    Rule("PATCH", "/products/{id}", Access.AUTHENTICATED, Service.PRODUCT, resendable=True),
    Rule("DELETE", "/products/{id}", Access.ADMIN, Service.PRODUCT, resendable=True),
    Rule("POST", "/orders", Access.AUTHENTICATED, Service.ORDER, resendable=True),
    Rule("GET", "/orders", Access.AUTHENTICATED, Service.ORDER),
    Rule("GET", "/orders/{id}", Access.AUTHENTICATED, Service.ORDER),
    Rule("POST", "/orders/{id}/cancel", Access.AUTHENTICATED, Service.ORDER),
    Rule("POST", "/orders/{id}/payment", Access.ADMIN, Service.ORDER),
    Rule("POST", "/orders/{id}/shipment", Access.ADMIN, Service.ORDER),
)

PARAMETER = "{id}"
# An id segment: unreserved characters only, not starting with a dot (so never "." or
# ".."), no percent-encoding. Real ids are UUIDs; anything else is not a listed path.
ID_SEGMENT = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,127}")


@dataclass(frozen=True, slots=True)
class Resource:
    """One path template and what each method on it means."""

    template: str
    rules: Mapping[str, Rule]
    allow: str  # the Allow header of a 405


def _allow_header(methods: Iterable[str]) -> str:
    return ", ".join(sorted(methods))


def with_head(methods: Mapping[str, Rule]) -> dict[str, Rule]:
    """GET also answers HEAD (forwarded as GET, body dropped), as RFC 9110 expects."""
    rules = dict(methods)
    if "GET" in rules:
        rules.setdefault("HEAD", rules["GET"])
    return rules


class PolicyTable:
    def __init__(self, rules: Iterable[Rule] = RULES) -> None:
        grouped: dict[str, dict[str, Rule]] = {}
        for rule in rules:
            methods = grouped.setdefault(rule.template, {})
            if rule.method in methods:
                raise ValueError(f"{rule.method} {rule.template} is listed twice")
            methods[rule.method] = rule
        self._static: dict[str, Resource] = {}
        self._parameterised: dict[str, Resource] = {}
        self._actions: dict[tuple[str, str], Resource] = {}
        for template, methods in grouped.items():
            all_methods = with_head(methods)
            resource = Resource(template, all_methods, _allow_header(all_methods))
            parent, _, last = template.rpartition("/")
            grandparent, _, middle = parent.rpartition("/")
            if last == PARAMETER and "{" not in parent:
                self._parameterised[parent] = resource
            elif middle == PARAMETER and "{" not in grandparent and "{" not in last:
                self._actions[(grandparent, last)] = resource
            elif "{" in template:
                raise ValueError(
                    f"{template}: {PARAMETER} is supported as the last segment, or before it"
                )
            else:
                self._static[template] = resource

    def resolve(self, path: str) -> Resource | None:
        """The resource a raw (still percent-encoded) path names, or None (404)."""
        resource = self._static.get(path)
        if resource is not None:
            return resource
        parent, _, last = path.rpartition("/")
        resource = self._parameterised.get(parent)
        if resource is not None and ID_SEGMENT.fullmatch(last):
            return resource
        if self._actions:
            grandparent, _, middle = parent.rpartition("/")
            resource = self._actions.get((grandparent, last))
            if resource is not None and ID_SEGMENT.fullmatch(middle):
                return resource
        return None

    @property
    def resources(self) -> list[Resource]:
        return [*self._static.values(), *self._parameterised.values(), *self._actions.values()]
