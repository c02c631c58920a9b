"""A client generated from the served document (openapi-python-client) works end to end."""

from __future__ import annotations

import importlib
import json
import secrets
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.docs.conftest import PASSWORD, Docs

pytestmark = pytest.mark.e2e

PACKAGE = "shop_api_client"
# No post hooks: the generator would run ruff on its output, which this test does not need.
CONFIG = (
    f"post_hooks: []\npackage_name_override: {PACKAGE}\nproject_name_override: shop-api-client\n"
)


def generate(document: dict[str, Any], into: Path) -> None:
    into.mkdir()
    (into / "openapi.json").write_text(json.dumps(document))
    (into / "config.yaml").write_text(CONFIG)
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(into / "openapi.json"),
            "--config",
            str(into / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(into / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # A document the generator only partly understands still generates, with warnings.
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr


def load(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_registers_logs_in_creates_and_lists(
    docs: Docs, document: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated = tmp_path / "generated"
    generate(document, generated)
    monkeypatch.syspath_prepend(str(generated))
    for name in [module for module in sys.modules if module.startswith(PACKAGE)]:
        monkeypatch.delitem(sys.modules, name)

    client_module = load("client")
    models = load("models")
    register = load("api.auth.register")
    login = load("api.auth.login")
    create_product = load("api.products.create_product")
    list_products = load("api.products.list_products")

    email = f"client-{secrets.token_hex(6)}@example.com"
    anonymous = client_module.Client(base_url=docs.url, raise_on_unexpected_status=True)
    with anonymous:
        registered = register.sync_detailed(
            client=anonymous,
            body=models.UserRegister(name="Generated Client", email=email, password=PASSWORD),
        )
        assert registered.status_code == 201, registered.content
        assert isinstance(registered.parsed, models.UserPublic)
        assert registered.parsed.role == "USER" and registered.parsed.email == email

        tokens = login.sync(client=anonymous, body=models.UserLogin(email=email, password=PASSWORD))
        assert isinstance(tokens, models.TokenPair) and tokens.token_type == "Bearer"

        refused = create_product.sync_detailed(
            client=anonymous, body=models.ProductCreate(name="No token", price=1.0)
        )
        assert refused.status_code == 401 and isinstance(refused.parsed, models.Problem)
        assert refused.headers["www-authenticate"].startswith("Bearer")

    authenticated = client_module.AuthenticatedClient(
        base_url=docs.url, token=tokens.access_token, raise_on_unexpected_status=True
    )
    name = f"Generated lamp {secrets.token_hex(4)}"
    with authenticated:
        created = create_product.sync_detailed(
            client=authenticated,
            body=models.ProductCreate(name=name, price=19.99, stock=3),
        )
        assert created.status_code == 201, created.content
        product = created.parsed
        assert isinstance(product, models.ProductPublic)
        assert product.price == 19.99 and product.stock == 3 and product.currency == "USD"
        assert product.owner_id == registered.parsed.id
        assert created.headers["location"] == f"/products/{product.id}"
        assert created.headers["etag"]

        page = list_products.sync(client=authenticated, q=name, limit=5)
        assert isinstance(page, models.ProductPage)
        assert [item.id for item in page.items] == [product.id]
        assert page.next_cursor is None
