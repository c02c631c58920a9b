"""The public document is assembled from the services' documents and the policy table."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from openapi_spec_validator import validate

from api_gateway.openapi import AssemblyError, assemble, operations
from api_gateway.policy import RULES, Access, Rule, Service, Throttle
from shop_common.service_app import PROBLEM_SCHEMA

THING = {"type": "object", "properties": {"name": {"type": "string"}}}
BODY_METHODS = {"POST", "PUT", "PATCH"}


def service_documents(rules: tuple[Rule, ...] = RULES) -> dict[str, dict[str, Any]]:
    """What FastAPI would publish for each rule's route, with its own parameter names."""
    documents: dict[str, dict[str, Any]] = {
        service.value: {
            "openapi": "3.1.0",
            "info": {"title": service.value, "version": "1"},
            "paths": {},
            "components": {
                "schemas": {
                    "Problem": PROBLEM_SCHEMA,
                    "Thing": THING,
                    "Health": {"type": "object"},
                    "HTTPValidationError": {"type": "object"},
                }
            },
        }
        for service in Service
    }
    for number, rule in enumerate(rules):
        path = rule.template.replace("{id}", "{thing_id}")
        operation: dict[str, Any] = {
            "operationId": f"operation{number}",
            "summary": "Something",
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                    },
                },
                "422": {
                    "description": "Validation Error",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
                        }
                    },
                },
            },
        }
        if "{" in path:
            operation["parameters"] = [
                {"name": "thing_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        if rule.method in BODY_METHODS:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
            }
        documents[rule.service.value]["paths"].setdefault(path, {})[rule.method.lower()] = operation
    documents[Service.AUTH.value]["paths"]["/health"] = {"get": {"responses": {}}}
    documents[Service.AUTH.value]["paths"]["/internal/revocations"] = {"get": {"responses": {}}}
    return documents


DOCUMENT = assemble(service_documents())


def operation(method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = DOCUMENT["paths"][path][method.lower()]
    return found


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOCUMENT)
    assert DOCUMENT["openapi"] == "3.1.0"


def test_it_has_exactly_the_policy_routes_heads_and_the_gateways_own_endpoints() -> None:
    expected = {(rule.method, rule.template) for rule in RULES}
    expected |= {("HEAD", rule.template) for rule in RULES if rule.method == "GET"}
    expected |= {(m, p) for p in ("/health", "/ready", "/metrics") for m in ("GET", "HEAD")}
    assert {(method, path) for method, path, _ in operations(DOCUMENT)} == expected


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for _, _, op in operations(DOCUMENT)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule.method} {rule.template}")
def test_security_and_access_come_from_the_rule(rule: Rule) -> None:
    op = operation(rule.method, rule.template)
    assert op["x-access"] == rule.access.value
    if rule.access is Access.PUBLIC and not rule.reads_token:
        assert op["security"] == []
        assert "401" not in op["responses"]
    elif rule.access is Access.PUBLIC:
        assert op["security"] == [{}, {"bearerAuth": []}]
    else:
        assert op["security"] == [{"bearerAuth": []}]
    if rule.reads_token:
        assert "WWW-Authenticate" in op["responses"]["401"]["headers"]
    assert ("403" in op["responses"]) is (rule.access is Access.ADMIN)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule.method} {rule.template}")
def test_every_operation_documents_the_gateways_problems(rule: Rule) -> None:
    responses = operation(rule.method, rule.template)["responses"]
    assert responses["405"]["headers"]["Allow"]["required"] is True
    assert "Retry-After" in responses["429"]["headers"]
    assert "Retry-After" in responses["503"]["headers"]
    for status in ("405", "429", "502", "503", "504"):
        media = responses[status]["content"]["application/problem+json"]
        assert media["schema"] == {"$ref": "#/components/schemas/Problem"}
        assert media["example"]["status"] == int(status)
    for status, response in responses.items():
        assert response["headers"]["X-Request-ID"]["required"] is True, status
    body_statuses = {"400", "413", "415", "422"}
    if rule.method in BODY_METHODS:
        assert body_statuses <= set(responses)
    else:
        assert not body_statuses & set(responses)
    assert ("404" in responses) is ("{id}" in rule.template)


def test_fastapi_validation_responses_and_unused_schemas_are_dropped() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    assert {"HTTPValidationError", "ValidationError", "Health"}.isdisjoint(schemas)
    assert {"Problem", "Thing", "GatewayHealth", "GatewayReadiness"} <= set(schemas)


def test_path_parameters_take_the_names_of_the_policy_templates() -> None:
    parameters = operation("PATCH", "/products/{id}")["parameters"]
    assert [p["name"] for p in parameters if p["in"] == "path"] == ["id"]
    assert {"name", "in", "schema"} <= set(parameters[-1]) and parameters[-1]["in"] == "header"
    assert parameters[-1]["name"] == "X-Request-ID"


def test_head_answers_like_get_without_a_body() -> None:
    get, head = operation("GET", "/products/{id}"), operation("HEAD", "/products/{id}")
    assert head["operationId"] == get["operationId"] + "Head"
    assert set(head["responses"]) == set(get["responses"])
    assert all("content" not in response for response in head["responses"].values())
    assert head["security"] == get["security"] and head["x-access"] == get["x-access"]


def test_the_login_limit_is_described_on_login() -> None:
    login = next(rule for rule in RULES if rule.throttle is Throttle.LOGIN)
    described = operation(login.method, login.template)["responses"]["429"]["description"]
    assert "failed logins for this email" in described


def test_a_service_reason_for_a_status_is_kept_next_to_the_gateways() -> None:
    documents = service_documents()
    product = documents[Service.PRODUCT.value]["paths"]["/products/{thing_id}"]["patch"]
    product["responses"]["403"] = {"description": "Only the owner or an ADMIN may change it."}
    responses = assemble(documents)["paths"]["/products/{id}"]["patch"]["responses"]
    assert responses["403"]["description"] == "Only the owner or an ADMIN may change it."
    login = next(rule for rule in RULES if rule.throttle is Throttle.LOGIN)
    documents[Service.AUTH.value]["paths"][login.template]["post"]["responses"]["429"] = {
        "description": "This email's failed-login limit is reached."
    }
    merged = assemble(documents)["paths"][login.template]["post"]["responses"]["429"]
    assert merged["description"].endswith("This email's failed-login limit is reached.")
    assert "application/problem+json" in merged["content"]


def test_clashing_schema_names_are_prefixed_with_the_service_name() -> None:
    documents = service_documents()
    other = documents[Service.PRODUCT.value]["components"]["schemas"]
    other["Thing"] = {"type": "object", "properties": {"price": {"type": "number"}}}
    schemas = assemble(documents)["components"]["schemas"]
    assert schemas["Thing"] == THING
    assert schemas["ProductServiceThing"]["properties"] == {"price": {"type": "number"}}
    document = assemble(documents)
    get = document["paths"]["/products/{id}"]["get"]
    ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ProductServiceThing"
    validate(document)


def test_a_route_missing_from_a_service_document_is_an_error() -> None:
    documents = service_documents()
    del documents[Service.PRODUCT.value]["paths"]["/products/{thing_id}"]["delete"]
    with pytest.raises(AssemblyError, match=r"DELETE /products/\{id\} \(product-service\)"):
        assemble(documents)
    with pytest.raises(AssemblyError, match="auth-service"):
        assemble({Service.PRODUCT.value: service_documents()[Service.PRODUCT.value]})


def test_assembling_leaves_the_service_documents_unchanged() -> None:
    documents = service_documents()
    before = copy.deepcopy(documents)
    assemble(documents)
    assert documents == before


def test_the_gateways_own_endpoints_are_public_and_answer_get_and_head() -> None:
    for path in ("/health", "/ready", "/metrics"):
        for method in ("GET", "HEAD"):
            op = operation(method, path)
            assert op["security"] == [] and op["x-access"] == "public"
            assert op["responses"]["405"]["headers"]["Allow"]["required"] is True
            assert "429" not in op["responses"]
    assert set(operation("GET", "/ready")["responses"]) == {"200", "405", "503"}
    metrics = operation("GET", "/metrics")["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
