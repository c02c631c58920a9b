"""Which minters a route accepts, and the verifier a service builds from its settings.

Every route accepts credentials minted by the gateway only, unless it says otherwise:

    @router.post("/stock/reservations", dependencies=[accepts_callers("order-service")])

GatewayGuard reads these declarations from the app's routes when it is built and refuses
(403) a credential whose minter the route does not name, before any endpoint code runs;
the dependency checks again and hands the endpoint the Caller.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from shop_common.credential import GATEWAY, Caller, CredentialVerifier
from shop_common.keys import load_public_key
from shop_common.problems import Problem
from shop_common.settings import ServiceSettings

DEFAULT_CALLERS: frozenset[str] = frozenset({GATEWAY})


class CallerNotAccepted(Problem):
    """A valid credential, minted by someone this route does not accept."""

    status = 403


class AcceptedCallers:
    """The dependency behind accepts_callers(); its `issuers` mark the route."""

    def __init__(self, issuers: Iterable[str]) -> None:
        self.issuers = frozenset(issuers)
        if not self.issuers:
            raise ValueError("a route accepts at least one caller")

    async def __call__(self, request: Request) -> Caller:
        caller = request.scope.get("state", {}).get("caller")
        if not isinstance(caller, Caller) or caller.issuer not in self.issuers:
            raise CallerNotAccepted("This route does not accept requests from this caller.")
        return caller


def accepts_callers(*issuers: str) -> Any:
    """`dependencies=[accepts_callers("order-service")]`: who may call this route."""
    return Depends(AcceptedCallers(issuers))


@dataclass(frozen=True, slots=True)
class _Rule:
    path: re.Pattern[str]
    methods: frozenset[str]
    issuers: frozenset[str]


class CallerRules:
    """The routes that accept other minters than the gateway alone, read once from the app.

    Declarations on a route and on the routers it is included in all apply (each is a
    dependency that runs): the route accepts the minters every one of them names.
    """

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        rules = []
        for route in _api_routes(routes):
            declared = [
                dependency.dependency.issuers
                for dependency in route.dependencies
                if isinstance(dependency.dependency, AcceptedCallers)
            ]
            if declared:
                methods = frozenset(route.methods or ())
                rules.append(_Rule(route.path_regex, methods, frozenset.intersection(*declared)))
        self._rules = tuple(rules)

    @property
    def issuers(self) -> frozenset[str]:
        """Every minter some route accepts."""
        return DEFAULT_CALLERS.union(*(rule.issuers for rule in self._rules))

    def accepted(self, method: str, path: str) -> frozenset[str]:
        for rule in self._rules:
            if method in rule.methods and rule.path.match(path):
                return rule.issuers
        return DEFAULT_CALLERS


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[Any]:
    """Every endpoint route with its path, methods and dependencies as included.

    Recent FastAPI keeps included routers as routers (its public iter_route_contexts
    walks them, prefixes and router dependencies applied); older ones copied each route
    into the app's list. shop-common/tests/test_callers.py covers a router-level case.
    """
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # an older FastAPI: the list is flat already
        yield from (route for route in routes if isinstance(route, APIRoute))
        return
    for context in iter_route_contexts(list(routes)):
        if isinstance(context.original_route, APIRoute):
            yield context


def credential_verifier(
    settings: ServiceSettings, *, audience: str, callers: Collection[str] = ()
) -> CredentialVerifier:
    """A verifier for `audience` holding the gateway's public key and each caller's.

    Raises OSError or ValueError naming the file when a key cannot be read.
    """
    keys = {}
    for issuer in {GATEWAY, *callers}:
        path = settings.credential_public_key_path(issuer)
        try:
            keys[issuer] = load_public_key(path)
        except (OSError, ValueError) as exc:
            raise type(exc)(f"cannot read {issuer}'s public key {path}: {exc}") from None
    return CredentialVerifier(keys, audience)
