"""The API page (``/docs``) in a real browser: Swagger UI renders the app's OpenAPI 3.1 document.

Swagger UI 4 cannot read OpenAPI 3.1 and draws only "Unable to render this definition"; this
test opens the page over the real app in Debian's Chromium and fails on that, on a missing
operation, on any console error or uncaught script error, and on any CSP violation (the page
must work under the app's policy: no inline script, nothing from another origin).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

from browser import PageWatch, api_get, new_context, screenshot, serve_ledger

pytestmark = pytest.mark.slow

UNRENDERABLE = "Unable to render this definition"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app over an empty ledger: the OpenAPI document does not depend on data."""
    with serve_ledger(tmp_path_factory.mktemp("web-docs") / "empty.db") as url:
        yield url


def wait_drawn(page: Page) -> None:
    """Wait until Swagger UI has drawn the operations, or given up on the document."""
    page.wait_for_function(
        """(unrenderable) => document.querySelector(".swagger-ui .opblock")
            || document.querySelector(".swagger-ui .errors-wrapper")
            || document.body.innerText.includes(unrenderable)""",
        arg=UNRENDERABLE,
    )


def test_api_page_renders_the_openapi_document(app_url: str, browser: Browser) -> None:
    document = api_get(app_url, "/openapi.json")
    assert document["openapi"].startswith("3.1"), "the defect is about a 3.1 document"
    paths = sorted(document["paths"])
    assert "/api/v1/versions" in paths

    context = new_context(browser)
    page = context.new_page()
    watch = PageWatch(page)
    console_errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    page.on("console", on_console)
    try:
        page.goto(app_url + "/docs")
        # Swagger UI has finished when it drew either the operations or its error box.
        wait_drawn(page)
        page.wait_for_load_state("networkidle")
        screenshot(page, "docs")

        body = page.locator("body").inner_text()
        assert UNRENDERABLE not in body, body[:2000]
        assert page.locator(".swagger-ui .errors-wrapper").count() == 0, body[:2000]
        assert "imagetrail" in page.locator(".swagger-ui .info .title").inner_text()

        shown = set(page.locator(".swagger-ui .opblock-summary-path").all_inner_texts())
        shown = {p.replace("\u200b", "").strip() for p in shown}  # Swagger UI's word breaks
        assert "/api/v1/versions" in shown
        assert set(paths) <= shown, sorted(set(paths) - shown)

        watch.check()
        assert not console_errors, f"console errors: {console_errors}"
    finally:
        context.close()


def test_api_page_loads_nothing_from_elsewhere(app_url: str, browser: Browser) -> None:
    context = new_context(browser)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(app_url + "/docs")
        wait_drawn(page)
        page.wait_for_load_state("networkidle")
        elsewhere = [
            url for url in requested if not url.startswith((app_url + "/", "data:", "blob:"))
        ]
        assert not elsewhere, elsewhere
    finally:
        context.close()


def test_api_page_assets_come_from_the_installed_package() -> None:
    """Guards the VENDOR table against a package upgrade that moves or drops a file."""
    from imagetrail.web.app import VENDOR, vendor_file

    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        path = vendor_file(*VENDOR[name])
        assert isinstance(path, Path)
        assert path.is_file(), path
