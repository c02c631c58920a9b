"""What reaches an upstream, and what the gateway answers itself, route by route."""

from __future__ import annotations

import time
import uuid

import pytest

from shop_common.credential import CREDENTIAL_HEADER, CredentialVerifier, InvalidCredential
from shop_common.keys import load_public_key

pytestmark = pytest.mark.anyio

ID = str(uuid.uuid4())
PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/", id="root"),
        pytest.param("/products/", id="trailing-slash"),
        pytest.param(f"/products/{ID}/", id="trailing-slash-on-item"),
        pytest.param("/auth/users/", id="trailing-slash-on-users"),
        pytest.param("/admin", id="unlisted"),
        pytest.param("/products/%2e%2e/auth/users", id="encoded-dot-dot"),
        pytest.param("/products/..%2Fauth%2Fusers", id="encoded-slash"),
        pytest.param("/product%73", id="encoded-letter"),
        pytest.param("/auth/%2e%2e/products", id="encoded-traversal"),
        pytest.param("/auth/users/x/../../products", id="dot-segments"),
    ],
)
async def test_unknown_paths_get_404_and_are_never_forwarded(
    client, auth_upstream, product_upstream, tokens, path
) -> None:
    response = await client.get(path, headers=tokens.bearer(role="ADMIN"))
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 404
    assert body["request_id"] == response.headers["x-request-id"]
    assert auth_upstream.forwarded == product_upstream.forwarded == []


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        pytest.param("DELETE", "/products", "GET, HEAD, POST", id="delete-list"),
        pytest.param("POST", f"/products/{ID}", "DELETE, GET, HEAD, PATCH, PUT", id="post-item"),
        pytest.param("GET", "/auth/login", "POST", id="get-login"),
        pytest.param("PUT", "/auth/me", "GET, HEAD", id="put-me"),
        pytest.param("OPTIONS", "/products", "GET, HEAD, POST", id="options-without-cors"),
        pytest.param("POST", "/health", "GET, HEAD", id="post-health"),
    ],
)
async def test_a_known_path_with_another_method_gets_405_with_allow(
    client, product_upstream, method, path, allow
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == PROBLEM
    assert product_upstream.forwarded == []


async def test_405_comes_before_401(client, tokens) -> None:
    response = await client.delete("/products", headers={"Authorization": "Bearer forged"})
    assert response.status_code == 405


async def test_404_comes_before_401_and_405(client) -> None:
    response = await client.delete("/products/", headers={"Authorization": "Bearer forged"})
    assert response.status_code == 404


USER, ADMIN, ANONYMOUS = "USER", "ADMIN", None
ROUTES = [
    ("POST", "/auth/register", {ANONYMOUS: 200, USER: 200, ADMIN: 200}),
    ("POST", "/auth/login", {ANONYMOUS: 200, USER: 200, ADMIN: 200}),
    ("POST", "/auth/refresh", {ANONYMOUS: 200, USER: 200, ADMIN: 200}),
    ("POST", "/auth/logout", {ANONYMOUS: 200, USER: 200, ADMIN: 200}),
    ("GET", "/auth/jwks.json", {ANONYMOUS: 200, USER: 200, ADMIN: 200}),
    ("GET", "/auth/me", {ANONYMOUS: 401, USER: 200, ADMIN: 200}),
    ("GET", "/auth/users", {ANONYMOUS: 401, USER: 403, ADMIN: 200}),
    ("PATCH", f"/auth/users/{ID}", {ANONYMOUS: 401, USER: 403, ADMIN: 200}),
    ("GET", "/products", {ANONYMOUS: 200, USER: 200, ADMIN: 200}),
    ("POST", "/products", {ANONYMOUS: 401, USER: 200, ADMIN: 200}),
    ("GET", f"/products/{ID}", {ANONYMOUS: 200, USER: 200, ADMIN: 200}),
    ("PUT", f"/products/{ID}", {ANONYMOUS: 401, USER: 200, ADMIN: 200}),
    ("PATCH", f"/products/{ID}", {ANONYMOUS: 401, USER: 200, ADMIN: 200}),
    ("DELETE", f"/products/{ID}", {ANONYMOUS: 401, USER: 403, ADMIN: 200}),
]
MATRIX = [
    pytest.param(method, path, role, expected[role], id=f"{method}-{path}-{role or 'anonymous'}")
    for method, path, expected in ROUTES
    for role in (ANONYMOUS, USER, ADMIN)
]


@pytest.mark.parametrize(("method", "path", "role", "status"), MATRIX)
async def test_role_rules_of_the_contract(
    client, auth_upstream, product_upstream, tokens, method, path, role, status
) -> None:
    headers = tokens.bearer(role=role) if role else {}
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    response = await client.request(
        method, path, headers={**headers, "content-type": "application/json"}, content=body
    )
    assert response.status_code == status
    forwarded = auth_upstream.forwarded + product_upstream.forwarded
    if status == 200:
        assert [(r.method, r.path) for r in forwarded] == [(method, path)]
    else:
        assert forwarded == []
        assert response.headers["content-type"] == PROBLEM
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def credential_of(request, gateway, audience: str):
    verifier = CredentialVerifier(
        load_public_key(gateway.settings.gateway_public_key_path), audience
    )
    return verifier.verify(request.header(CREDENTIAL_HEADER), request.binding)


async def test_the_upstream_receives_a_credential_for_the_caller(
    client, gateway, product_upstream, tokens
) -> None:
    user = str(uuid.uuid4())
    session = str(uuid.uuid4())
    response = await client.post(
        "/products",
        headers={**tokens.bearer(sub=user, role="USER", sid=session), "x-request-id": "req-42"},
        json={"name": "x"},
    )
    assert response.status_code == 200
    (request,) = product_upstream.forwarded
    caller = credential_of(request, gateway, "product-service")
    assert (caller.user_id, caller.role, caller.session_id) == (user, "USER", session)
    assert request.header("x-request-id") == "req-42"


async def test_the_credential_carries_a_deadline_before_the_gateway_stops_waiting(
    client, gateway, product_upstream, tokens
) -> None:
    """UPSTREAM_TIMEOUT is 2 s here: the service must commit nothing 1.5 s after the
    request was sent (a quarter of a short timeout as margin)."""
    before = time.time()
    response = await client.post("/products", headers=tokens.bearer(), json={"name": "x"})
    after = time.time()
    assert response.status_code == 200
    (request,) = product_upstream.forwarded
    deadline = credential_of(request, gateway, "product-service").deadline
    assert deadline is not None
    assert before + 1.5 - 0.001 <= deadline <= after + 1.5
    assert deadline < before + gateway.settings.upstream_timeout


async def test_anonymous_calls_carry_an_anonymous_credential_for_that_service(
    client, gateway, auth_upstream
) -> None:
    response = await client.post("/auth/login", json={"email": "a@b.c", "password": "x"})
    assert response.status_code == 200
    (request,) = auth_upstream.forwarded
    caller = credential_of(request, gateway, "auth-service")
    assert (caller.user_id, caller.role) == (None, None)
    assert request.header("x-request-id") == response.headers["x-request-id"]
    with pytest.raises(Exception, match="another service"):
        credential_of(request, gateway, "product-service")


async def test_each_forwarded_request_carries_a_credential_bound_to_it(
    client, gateway, product_upstream, tokens
) -> None:
    """Never reused: the same caller's GET, HEAD (sent as GET) and PATCH each get their
    own, for their method, path, query and request id (docs/decisions/0002)."""
    headers = tokens.bearer(role="USER")
    await client.get(f"/products/{ID}?a=1", headers=headers)
    await client.get(f"/products/{ID}?a=1", headers=headers)
    await client.head(f"/products/{ID}", headers=headers)
    await client.patch(f"/products/{ID}", headers=headers, json={"name": "x"})
    forwarded = product_upstream.forwarded
    assert [r.method for r in forwarded] == ["GET", "GET", "GET", "PATCH"]
    tokens_sent = [r.header(CREDENTIAL_HEADER) for r in forwarded]
    assert len(set(tokens_sent)) == 4
    for request in forwarded:
        claims = request.credential_claims()
        assert claims["exp"] - claims["iat"] <= 60
        assert (claims["htm"], claims["htu"], claims["rid"]) == (
            request.method,
            request.raw_path.decode(),
            request.header("x-request-id"),
        )
        assert credential_of(request, gateway, "product-service").user_id is not None
    get, patch = forwarded[0], forwarded[3]
    with pytest.raises(InvalidCredential, match="method"):
        verifier = CredentialVerifier(
            load_public_key(gateway.settings.gateway_public_key_path), "product-service"
        )
        verifier.verify(get.header(CREDENTIAL_HEADER), patch.binding)


async def test_client_identity_headers_never_reach_the_upstream(
    client, product_upstream, tokens
) -> None:
    forged = {
        "x-gateway-credential": "forged",
        "x-user-id": "admin-id",
        "x-user-role": "ADMIN",
        "x-forwarded-user": "admin",
        "x-auth-request-user": "admin",
        "x-remote-user": "admin",
        "remote-user": "admin",
        "forwarded": "for=10.0.0.1",
        "x-real-ip": "10.0.0.1",
        "x-forwarded-for": "10.0.0.1",
        "connection": "keep-alive, x-hop",
        "x-hop": "1",
        "proxy-authorization": "Basic eA==",
        "if-none-match": '"v1"',
    }
    response = await client.get(f"/products/{ID}", headers={**forged, **tokens.bearer()})
    assert response.status_code == 200
    (request,) = product_upstream.forwarded
    names = [name for name, _ in request.headers]
    for name in forged:
        if name not in ("x-gateway-credential", "x-forwarded-for", "if-none-match"):
            assert name not in names, name
    assert "authorization" not in names  # services trust only the credential
    assert [v for k, v in request.headers if k == "x-gateway-credential"] != ["forged"]
    assert names.count("x-gateway-credential") == 1
    assert request.header("x-forwarded-for") == "203.0.113.7"  # the real peer, not the claim
    assert request.header("x-forwarded-proto") == "http"
    assert request.header("x-forwarded-host") == "gateway.test"
    assert request.header("if-none-match") == '"v1"'


async def test_query_strings_pass_through_untouched(client, product_upstream) -> None:
    response = await client.get("/products?q=caf%C3%A9&min_price=1.5&sort=-price&x=%25")
    assert response.status_code == 200
    assert response.json()["query"] == "q=caf%C3%A9&min_price=1.5&sort=-price&x=%25"


async def test_head_is_answered_from_a_get_without_a_body(client, product_upstream) -> None:
    response = await client.head(f"/products/{ID}")
    assert response.status_code == 200
    assert response.content == b""
    (request,) = product_upstream.forwarded
    assert request.method == "GET"


async def test_upstream_statuses_and_headers_come_back_as_sent(client) -> None:
    response = await client.get(f"/products/{ID}?status=418")
    assert response.status_code == 418
    assert response.json()["path"] == f"/products/{ID}"
    assert "server" not in response.headers


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        pytest.param("abc-123", True, id="sane"),
        pytest.param("x" * 128, True, id="longest"),
        pytest.param("x" * 129, False, id="too-long"),
        pytest.param("has space", False, id="space"),
        pytest.param("tab\there", False, id="control"),
        pytest.param("", False, id="empty"),
    ],
)
async def test_request_ids_are_kept_when_sane_and_replaced_otherwise(
    client, product_upstream, sent, kept
) -> None:
    response = await client.get("/products", headers={"x-request-id": sent})
    returned = response.headers["x-request-id"]
    assert (returned == sent) is kept
    assert 1 <= len(returned) <= 128
    (request,) = product_upstream.forwarded
    assert request.header("x-request-id") == returned  # not the upstream's own echo
    assert response.headers.get_list("x-request-id") == [returned]


async def test_gateway_errors_carry_the_request_id_too(client) -> None:
    response = await client.get("/nowhere", headers={"x-request-id": "trace-me"})
    assert response.headers["x-request-id"] == "trace-me"
    assert response.json()["request_id"] == "trace-me"
