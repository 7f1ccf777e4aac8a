"""Browser-test support: the real app on a loopback port, Debian's Chromium through Playwright.

Plain helpers (no fixtures) so that test modules compose them into the fixtures they need.
Chromium is the system one (``/usr/bin/chromium``); ``playwright install`` is never run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize

from imagetrail.ledger import Ledger
from imagetrail.settings import Settings, load
from imagetrail.web.app import create_app
from imagetrail.web.server import bind, url_of

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
DOCS_SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"

# Runs before any page script: records CSP violations where the test can read them.
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI + " " + e.sourceFile
    + ":" + e.lineNumber);
});
"""


def settings_for(ledger_path: Path, **extra: str) -> Settings:
    """Settings for a test app: only what the test passes, no environment."""
    return load({"ledger": str(ledger_path), **extra}, environ={})


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yields its base URL (no trailing /)."""
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="test-uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the test web server did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@contextmanager
def serve_ledger(ledger_path: Path, *, sync: bool = False, **extra: str) -> Iterator[str]:
    """The real imagetrail app over the ledger at ``ledger_path``, served on loopback."""
    settings = settings_for(ledger_path, **extra)
    app = create_app(settings, Ledger.open(ledger_path), sync=sync)
    with serve(app) as url:
        yield url


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class PageWatch:
    """What a page did that a test must see: dialogs, script errors, CSP violations."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def csp_violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__cspViolations || []")
        return found

    def check(self) -> None:
        """Fail on any dialog, uncaught script error or CSP violation seen so far."""
        assert not self.dialogs, f"a dialog opened: {self.dialogs}"
        assert not self.errors, f"script errors: {self.errors}"
        if not self.page.is_closed():
            assert not self.csp_violations(), f"CSP violations: {self.csp_violations()}"


def new_context(browser: Browser, *, dark: bool = False) -> BrowserContext:
    context = browser.new_context(
        viewport=VIEWPORT,
        color_scheme="dark" if dark else "light",
        accept_downloads=True,
        timezone_id="Europe/Berlin",  # not UTC: the pages must show UTC regardless
    )
    context.set_default_timeout(20_000)
    context.add_init_script(CSP_RECORDER)
    return context


def renders(page: Page) -> int:
    """How many times the page has finished drawing (body[data-rendered])."""
    value = page.evaluate("document.body.dataset.rendered || '0'")
    return int(value)


def wait_rendered(page: Page, after: int = 0, timeout: float = 20.0) -> None:
    """Wait until the page has drawn more than ``after`` times and is not loading."""
    deadline = time.monotonic() + timeout
    while True:
        if renders(page) > after and page.evaluate("!document.body.classList.contains('loading')"):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the page did not finish drawing ({page.url})")
        page.wait_for_timeout(50)


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    wait_rendered(page)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def api_get(base: str, path: str, **params: Any) -> Any:
    """The JSON API answer a page should be showing, fetched directly."""
    response = httpx.get(base + path, params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json() if "json" in response.headers["content-type"] else response.text


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot into test-artifacts/screenshots/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def ytick_labels(page: Page, plot: str) -> list[str]:
    """The y-axis labels plotly drew in ``plot`` (a CSS selector), top to bottom."""
    boxes: list[tuple[float, str]] = []
    for tick in page.locator(f"{plot} .ytick text").all():
        box = tick.bounding_box()
        assert box is not None
        boxes.append((box["y"], tick.text_content() or ""))
    return [text for _, text in sorted(boxes)]


def dump(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False)[:2000]


def shown_duration(seconds: float) -> str:
    """IT.duration."""
    s = round(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{round(s / 60)} min"
    if s < 172800:
        return f"{round(s / 3600)} h"
    return f"{round(s / 86400)} d"


def attempt_text(
    reasons: list[str], pods: int | None, pods_ran: int | None, waited: float | None
) -> str:
    """What the pages write under a rollout's state (IT.attemptText)."""
    why = ", ".join(reasons)
    if waited:
        said = f"waited {shown_duration(waited)}"
        why = f"{said}: {why}" if why else said
    if why and pods is not None and (pods_ran or 0) < pods:
        why += f" · {pods_ran or 0} of {pods} pods ran"
    return why


def ts(value: str) -> float:
    """An RFC 3339 UTC time (as the API writes it) in unix seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown_time(value: str) -> str:
    """A time as the pages write it (IT.time): ``2026-11-24 01:11:52Z``."""
    return datetime.fromtimestamp(ts(value), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
