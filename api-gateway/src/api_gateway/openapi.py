"""The public API's OpenAPI 3.1 document, assembled from the services' own documents.

The gateway never imports a service: it reads each one's /openapi.json (api_docs.py
fetches them with a gateway credential) and keeps exactly the operations its policy
table routes, under the table's path templates. What the gateway itself decides comes
from the same table that enforces it (openapi_parts.py words it):

- each operation's security and `x-access` (public / authenticated / admin);
- 401 (WWW-Authenticate) where the rule reads a token, 403 where it needs ADMIN;
- 405 (Allow) on every operation: it belongs to the path, whatever the method;
- 413/415/400/422 and 408 (body too slow) where there is a body, 404 on `{id}` paths;
- 431 (header fields over the limits) on every operation;
- 429 (Retry-After) and 502/503/504 on every forwarded operation;
- HEAD wherever GET is (forwarded as GET, answered without the body);
- X-Request-ID on every request and response;
- the gateway's own /health, /ready and /metrics.

Everything else — schemas, examples, links, ETag/Location, 404/409/412 — is the
services' word: a status a service answers must be declared in its route.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from api_gateway import openapi_parts as parts
from api_gateway.openapi_parts import head_of
from api_gateway.policy import RULES, Rule

_PARAMETER = re.compile(r"\{[^/{}]+\}")
_METHOD_ORDER = ("get", "head", "post", "put", "patch", "delete")
_BODY_METHODS = frozenset({"post", "put", "patch"})
# FastAPI's default 422 body; our services answer every 422 as a Problem instead.
_FASTAPI_VALIDATION = frozenset({"HTTPValidationError", "ValidationError"})
_SCHEMA_REF = "#/components/schemas/"

Document = dict[str, Any]


class AssemblyError(Exception):
    """A service's document lacks an operation the policy table routes."""


def assemble(sources: Mapping[str, Mapping[str, Any]], rules: Iterable[Rule] = RULES) -> Document:
    """One document from {service name: that service's OpenAPI document}."""
    schemas: dict[str, Any] = copy.deepcopy(parts.OWN_SCHEMAS)
    documents = {
        service: _import_schemas(service, source, schemas) for service, source in sources.items()
    }
    paths: dict[str, dict[str, Any]] = {}
    missing = []
    for rule in rules:
        found = _find(documents.get(rule.service.value, {}), rule)
        if found is None:
            missing.append(f"{rule.method} {rule.template} ({rule.service.value})")
            continue
        operation = _public_operation(rule, *found)
        item = paths.setdefault(rule.template, {})
        item[rule.method.lower()] = operation
        if rule.method == "GET":
            item["head"] = head_of(operation)
    if missing:
        raise AssemblyError("not in the services' documents: " + ", ".join(missing))
    paths.update(copy.deepcopy(parts.OWN_PATHS))
    document: Document = {
        "openapi": "3.1.0",
        "info": copy.deepcopy(parts.INFO),
        "tags": copy.deepcopy(parts.TAGS),
        "paths": {path: _ordered(item) for path, item in paths.items()},
        "components": {
            "schemas": schemas,
            "securitySchemes": {parts.BEARER: copy.deepcopy(parts.BEARER_SCHEME)},
        },
    }
    _prune_schemas(document)
    return document


def _import_schemas(service: str, source: Mapping[str, Any], schemas: dict[str, Any]) -> Document:
    """A copy of `source` whose schemas were added to `schemas`, renamed on a clash."""
    theirs: Mapping[str, Any] = source.get("components", {}).get("schemas", {})
    renames = {}
    for name, schema in theirs.items():
        if name in _FASTAPI_VALIDATION:
            continue
        if name in schemas and schemas[name] != schema:
            prefix = "".join(word.capitalize() for word in re.split(r"[^A-Za-z0-9]+", service))
            renames[name] = prefix + name
    document: Document = _rename_refs(copy.deepcopy(dict(source)), renames)
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        if name not in _FASTAPI_VALIDATION:
            schemas[renames.get(name, name)] = schema
    return document


def _rename_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if not renames:
        return node
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_SCHEMA_REF):
            name = ref.removeprefix(_SCHEMA_REF)
            node["$ref"] = _SCHEMA_REF + renames.get(name, name)
        for value in node.values():
            _rename_refs(value, renames)
    elif isinstance(node, list):
        for value in node:
            _rename_refs(value, renames)
    return node


def _shape(template: str) -> str:
    return _PARAMETER.sub("{}", template)


def _find(document: Mapping[str, Any], rule: Rule) -> tuple[str, dict[str, Any]] | None:
    """The service's operation for a rule: same method, same path up to parameter names."""
    method = rule.method.lower()
    for path, item in document.get("paths", {}).items():
        if _shape(path) == _shape(rule.template) and method in item:
            return path, item[method]
    return None


def _public_operation(rule: Rule, upstream_path: str, operation: dict[str, Any]) -> Document:
    op = copy.deepcopy(operation)
    # Same shape, so the same number of parameters: the table's names replace theirs.
    names = dict(
        zip(_PARAMETER.findall(upstream_path), _PARAMETER.findall(rule.template), strict=True)
    )
    parameters = []
    for parameter in op.get("parameters", []):
        if parameter.get("in") == "path":
            name = "{" + parameter["name"] + "}"
            parameter["name"] = names.get(name, name)[1:-1]
        parameters.append(parameter)
    parameters.append(copy.deepcopy(parts.REQUEST_ID_PARAMETER))
    op["parameters"] = parameters
    op["security"] = copy.deepcopy(parts.security(rule))
    op["x-access"] = rule.access.value
    op["description"] = (
        op.get("description", op.get("summary", "")).rstrip() + "\n\n" + parts.access_note(rule)
    ).lstrip()
    op["responses"] = _responses(rule, op)
    return op


def _responses(rule: Rule, op: Mapping[str, Any]) -> dict[str, Any]:
    declared: dict[str, Any] = {}
    for status, response in op.get("responses", {}).items():
        if not _is_fastapi_validation(response):
            declared[str(status)] = _with_example(str(status), response)
    has_body = "requestBody" in op and rule.method.lower() in _BODY_METHODS
    for status, description in parts.gateway_problems(rule, has_body=has_body).items():
        declared[status] = _merge_problem(status, description, declared.get(status))
    for status, response in declared.items():
        headers = response.setdefault("headers", {})
        for name, header in parts.response_headers(status).items():
            headers.setdefault(name, copy.deepcopy(header))
    return dict(sorted(declared.items()))


def _is_fastapi_validation(response: Mapping[str, Any]) -> bool:
    """FastAPI's guess that a route with parameters may answer its own 422 shape.

    Our services answer every 422 as a Problem and declare it where it can happen, so
    the guess is dropped rather than trusted (the fuzzer checks the declarations).
    """
    for media in response.get("content", {}).values():
        ref = media.get("schema", {}).get("$ref", "")
        if ref.removeprefix(_SCHEMA_REF) in _FASTAPI_VALIDATION:
            return True
    return False


def _with_example(status: str, response: dict[str, Any]) -> dict[str, Any]:
    if status.isdigit() and int(status) >= 400:
        media = response.get("content", {}).get(parts.PROBLEM_MEDIA_TYPE)
        if media is not None:
            media.setdefault("example", parts.problem_example(status, response["description"]))
    return response


def _merge_problem(status: str, description: str, declared: dict[str, Any] | None) -> Document:
    """The gateway's reason for a status, joined with the service's own if it gave one."""
    if declared is None:
        return parts.problem_response(status, description)
    theirs = declared.get("description", "")
    if theirs and theirs != parts.phrase(status) and theirs not in description:
        description = f"{description} {theirs}"
    declared["description"] = description
    if parts.PROBLEM_MEDIA_TYPE not in declared.get("content", {}):
        declared.setdefault("content", {}).update(parts.problem_content(status, description))
    return declared


def _ordered(item: Mapping[str, Any]) -> dict[str, Any]:
    return {method: item[method] for method in _METHOD_ORDER if method in item}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_SCHEMA_REF):
            yield ref.removeprefix(_SCHEMA_REF)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _prune_schemas(document: Document) -> None:
    """Drop the schemas no kept operation reaches (the services' health, FastAPI's own)."""
    schemas = document["components"]["schemas"]
    reached: set[str] = set()
    pending = list(_refs(document["paths"]))
    while pending:
        name = pending.pop()
        if name in reached or name not in schemas:
            continue
        reached.add(name)
        pending.extend(_refs(schemas[name]))
    document["components"]["schemas"] = {
        name: schema for name, schema in sorted(schemas.items()) if name in reached
    }


def operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) for every operation of a document."""
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHOD_ORDER:
                yield method.upper(), path, operation
