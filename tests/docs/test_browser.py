"""Swagger UI in a real browser: it renders offline, authorizes, and "Try it out" works.

Debian's Chromium driven by Playwright's Python package (never `playwright install`).
Every request that is not to this machine's loopback is aborted, so the page can only
render from what the gateway serves; a screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.docs.conftest import Docs

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


class OfflinePage:
    """A page on which only loopback requests go out; what was refused, and console errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.requested: list[str] = []
        page.route("**/*", self._route)
        page.on("console", lambda message: self._console(message.type, message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.set_default_timeout(TIMEOUT_MS)

    def _route(self, route: Route) -> None:
        url = route.request.url
        self.requested.append(url)
        if urlsplit(url).hostname in LOOPBACK:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _console(self, kind: str, text: str) -> None:
        if kind == "error":
            self.errors.append(text)


@pytest.fixture
def offline(browser: Browser) -> Iterator[OfflinePage]:
    context = browser.new_context(viewport={"width": 1280, "height": 1600})
    try:
        yield OfflinePage(context.new_page())
    finally:
        context.close()


def open_docs(offline: OfflinePage, docs: Docs) -> Page:
    page = offline.page
    page.goto(f"{docs.url}/api-docs")
    page.locator(".swagger-ui .info .title").filter(has_text="Shop API").wait_for()
    page.locator("#operations-products-createProduct").wait_for()
    return page


def test_the_page_renders_with_every_outside_request_blocked(
    offline: OfflinePage, docs: Docs, artifacts: Path
) -> None:
    page = open_docs(offline, docs)
    assert page.locator(".opblock").count() >= 25
    assert page.locator("#operations-auth-login").is_visible()
    assert offline.blocked == []
    assert offline.errors == []  # a Content-Security-Policy refusal would be logged here
    hosts = {urlsplit(url).hostname for url in offline.requested if url.startswith("http")}
    assert hosts == {urlsplit(docs.url).hostname}
    page.screenshot(path=artifacts / "api-docs.png", full_page=False)


def test_authorize_and_try_it_out_creates_a_product(
    offline: OfflinePage, docs: Docs, artifacts: Path
) -> None:
    user = docs.new_user()
    page = open_docs(offline, docs)

    page.locator("button.authorize").first.click()
    dialog = page.locator(".dialog-ux .modal-ux")
    dialog.locator("input").first.fill(user.token)
    dialog.locator("button.authorize").click()
    dialog.locator("button.btn-done").click()
    assert page.locator("button.authorize.locked").count() >= 1

    operation = page.locator("#operations-products-createProduct")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    name = f"Browser lamp {secrets.token_hex(4)}"
    body = {"name": name, "price": 12.5, "stock": 2}
    operation.locator("textarea.body-param__text").fill(json.dumps(body))
    operation.locator("button.execute").click()

    status = operation.locator(".live-responses-table .response .response-col_status")
    status.filter(has_text="201").wait_for()
    result = operation.locator(".live-responses-table tr.response .response-col_description")
    assert name in result.inner_text()
    operation.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "api-docs-try-it-out.png", full_page=False)
    assert offline.blocked == [] and offline.errors == []

    with docs.client() as client:
        listed = client.get("/products", params={"q": name}).json()["items"]
    assert [(item["name"], item["owner_id"]) for item in listed] == [(name, user.profile["id"])]
