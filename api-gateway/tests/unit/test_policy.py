from __future__ import annotations

import pytest

from api_gateway.policy import RULES, Access, PolicyTable, Rule, Service

ID = "3f1c0b5e-8a4d-4c51-9d0e-6f1f2a3b4c5d"
table = PolicyTable()


@pytest.mark.parametrize(
    ("method", "path", "template", "access", "service"),
    [
        pytest.param(
            "POST", "/auth/register", "/auth/register", Access.PUBLIC, Service.AUTH, id="register"
        ),
        pytest.param("POST", "/auth/login", "/auth/login", Access.PUBLIC, Service.AUTH, id="login"),
        pytest.param(
            "POST", "/auth/refresh", "/auth/refresh", Access.PUBLIC, Service.AUTH, id="refresh"
        ),
        pytest.param(
            "POST", "/auth/logout", "/auth/logout", Access.PUBLIC, Service.AUTH, id="logout"
        ),
        pytest.param("GET", "/auth/me", "/auth/me", Access.AUTHENTICATED, Service.AUTH, id="me"),
        pytest.param(
            "GET", "/auth/users", "/auth/users", Access.ADMIN, Service.AUTH, id="list-users"
        ),
        pytest.param(
            "PATCH",
            f"/auth/users/{ID}",
            "/auth/users/{id}",
            Access.ADMIN,
            Service.AUTH,
            id="set-role",
        ),
        pytest.param(
            "GET", "/auth/jwks.json", "/auth/jwks.json", Access.PUBLIC, Service.AUTH, id="jwks"
        ),
        pytest.param(
            "GET", "/products", "/products", Access.PUBLIC, Service.PRODUCT, id="list-products"
        ),
        pytest.param(
            "POST", "/products", "/products", Access.AUTHENTICATED, Service.PRODUCT, id="create"
        ),
        pytest.param(
            "GET", f"/products/{ID}", "/products/{id}", Access.PUBLIC, Service.PRODUCT, id="get"
        ),
        pytest.param(
            "PUT",
            f"/products/{ID}",
            "/products/{id}",
            Access.AUTHENTICATED,
            Service.PRODUCT,
            id="put",
        ),
        pytest.param(
            "PATCH",
            f"/products/{ID}",
            "/products/{id}",
            Access.AUTHENTICATED,
            Service.PRODUCT,
            id="patch",
        ),
        pytest.param(
            "DELETE",
            f"/products/{ID}",
            "/products/{id}",
            Access.ADMIN,
            Service.PRODUCT,
            id="delete",
        ),
        pytest.param(
            "POST", "/orders", "/orders", Access.AUTHENTICATED, Service.ORDER, id="place-order"
        ),
        pytest.param(
            "GET", "/orders", "/orders", Access.AUTHENTICATED, Service.ORDER, id="list-orders"
        ),
        pytest.param(
            "GET", f"/orders/{ID}", "/orders/{id}", Access.AUTHENTICATED, Service.ORDER, id="order"
        ),
        pytest.param(
            "POST",
            f"/orders/{ID}/cancel",
            "/orders/{id}/cancel",
            Access.AUTHENTICATED,
            Service.ORDER,
            id="cancel",
        ),
        pytest.param(
            "POST",
            f"/orders/{ID}/payment",
            "/orders/{id}/payment",
            Access.ADMIN,
            Service.ORDER,
            id="payment",
        ),
        pytest.param(
            "POST",
            f"/orders/{ID}/shipment",
            "/orders/{id}/shipment",
            Access.ADMIN,
            Service.ORDER,
            id="shipment",
        ),
    ],
)
def test_every_contract_route_has_its_access_level_and_upstream(
    method: str, path: str, template: str, access: Access, service: Service
) -> None:
    resource = table.resolve(path)
    assert resource is not None
    assert resource.template == template
    rule = resource.rules[method]
    assert (rule.access, rule.service) == (access, service)


def test_the_table_lists_exactly_the_contract_routes() -> None:
    assert len(RULES) == 20
    assert len({(rule.method, rule.template) for rule in RULES}) == 20


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/", id="root"),
        pytest.param("/products/", id="trailing-slash-on-list"),
        pytest.param(f"/products/{ID}/", id="trailing-slash-on-item"),
        pytest.param("/auth/me/", id="trailing-slash-on-me"),
        pytest.param("/auth", id="auth-prefix-alone"),
        pytest.param("/Products", id="other-case"),
        pytest.param("//products", id="double-slash"),
        pytest.param(f"/products/{ID}/reviews", id="deeper-path"),
        pytest.param("/products/..", id="dot-dot-id"),
        pytest.param("/products/.", id="dot-id"),
        pytest.param("/products/%2e%2e", id="encoded-dot-dot"),
        pytest.param("/products/..%2fauth%2fusers", id="encoded-traversal"),
        pytest.param("/product%73", id="encoded-letter"),
        pytest.param("/products/a%20b", id="encoded-space"),
        pytest.param("/auth/users/x/../../products", id="traversal"),
        pytest.param("/products/" + "a" * 129, id="overlong-id"),
        pytest.param("/health/", id="own-endpoint-with-slash"),
        pytest.param("/auth/jwks.json/", id="jwks-with-slash"),
        pytest.param("/internal/metrics", id="unlisted"),
        pytest.param(f"/orders/{ID}/cancel/", id="trailing-slash-on-action"),
        pytest.param(f"/orders/{ID}/refund", id="unknown-action"),
        pytest.param("/orders//cancel", id="action-without-id"),
        pytest.param("/orders/../cancel", id="action-dot-dot-id"),
        pytest.param(f"/products/{ID}/cancel", id="action-of-another-resource"),
        pytest.param(f"/x/orders/{ID}/cancel", id="action-under-another-prefix"),
    ],
)
def test_paths_outside_the_table_are_unknown(path: str) -> None:
    assert table.resolve(path) is None


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        pytest.param("/products", "GET, HEAD, POST", id="products"),
        pytest.param(f"/products/{ID}", "DELETE, GET, HEAD, PATCH, PUT", id="product"),
        pytest.param("/auth/login", "POST", id="login"),
        pytest.param("/auth/me", "GET, HEAD", id="me"),
        pytest.param(f"/orders/{ID}/cancel", "POST", id="cancel"),
        pytest.param("/orders", "GET, HEAD, POST", id="orders"),
        pytest.param(f"/auth/users/{ID}", "PATCH", id="user"),
    ],
)
def test_allow_lists_the_methods_of_a_path(path: str, allow: str) -> None:
    resource = table.resolve(path)
    assert resource is not None
    assert resource.allow == allow
    assert set(resource.rules) == set(allow.split(", "))


def test_a_method_a_path_does_not_have_is_absent() -> None:
    resource = table.resolve("/auth/login")
    assert resource is not None
    assert resource.rules.get("GET") is None
    assert resource.rules.get("OPTIONS") is None


def test_head_follows_the_get_rule() -> None:
    resource = table.resolve("/auth/me")
    assert resource is not None
    assert resource.rules["HEAD"] is resource.rules["GET"]


def test_token_exchange_routes_ignore_the_authorization_header() -> None:
    ignoring = {rule.template for rule in RULES if not rule.reads_token}
    assert ignoring == {
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/jwks.json",
    }


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param([Rule("GET", "/a", Access.PUBLIC, Service.AUTH)] * 2, id="duplicate-route"),
        pytest.param(
            [Rule("GET", "/a/{id}/b/c", Access.PUBLIC, Service.AUTH)], id="inner-parameter"
        ),
        pytest.param(
            [Rule("GET", "/a/{id}/{id}", Access.PUBLIC, Service.AUTH)], id="two-parameters"
        ),
    ],
)
def test_a_malformed_table_is_refused(rules: list[Rule]) -> None:
    with pytest.raises(ValueError):
        PolicyTable(rules)


def test_only_writes_applied_at_most_once_are_resent() -> None:
    """A resend of any other write could apply it twice (auth's refresh would look like a
    reused token; an order action would be answered 409 after it was applied)."""
    resendable = {(rule.method, rule.template) for rule in RULES if rule.resendable}
    assert resendable == {
        ("POST", "/products"),  # its event records the credential's jti
        ("PUT", "/products/{id}"),
        ("PATCH", "/products/{id}"),
        ("DELETE", "/products/{id}"),
        ("POST", "/orders"),  # its Idempotency-Key, required
    }
