"""The HTML report in Chromium with JavaScript off, as a mail client shows it; its screenshot
is docs/screenshots/report.png (rewritten only with IMAGETRAIL_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, sync_playwright

import hostile
from browser import ARTIFACTS, DOCS_SCREENSHOTS, launch
from imagetrail.report import make_report, write_report
from imagetrail.service.demo import build_demo_ledger
from imagetrail.service.query import Query, QueryContext, Window
from imagetrail.settings import load
from imagetrail.text import printable

pytestmark = pytest.mark.slow


def report_file(ledger: Path, out: Path, **extra: str) -> Path:
    since = extra.pop("since", None)
    qc = QueryContext(load({"ledger": str(ledger), **extra}, environ={}))
    report = make_report(qc, Query(window=Window.from_flags(since=since)))
    write_report(report, out, "html")
    return out


def test_html_report_in_chromium_without_javascript(tmp_path: Path) -> None:
    ledger = tmp_path / "demo.db"
    build_demo_ledger(ledger)[0].close()
    html = report_file(
        ledger, tmp_path / "report.html", report_stale_after="12d", public_url="https://it.example/"
    )
    hostile_db = tmp_path / "hostile.db"
    hostile.build_hostile_ledger(hostile_db, end=time.time() // 60 * 60).close()
    evil = report_file(hostile_db, tmp_path / "hostile.html", since="2d")

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(
                viewport={"width": 1100, "height": 900}, java_script_enabled=False
            )
            page = context.new_page()
            dialogs: list[str] = []

            def dismiss(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", dismiss)
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))

            page.goto(html.as_uri())
            heading = page.locator("h1").inner_text()
            assert heading == "Image version report"
            img = page.locator("img")
            assert img.count() == 1
            box = img.bounding_box()
            assert box is not None
            assert box["width"] > 600
            assert box["height"] > 300
            # The picture decoded (a broken image has no natural size).
            assert page.locator("img").evaluate("i => i.naturalWidth") > 600
            assert "Notable changes" in page.locator("body").inner_text()
            # Nothing fetched but the file itself (the image is inline).
            assert requests == [html.as_uri()]
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            if os.environ.get("IMAGETRAIL_UPDATE_SCREENSHOTS") == "1":
                DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                # The top of the report (summary, heatmap, notable changes) keeps docs light.
                page.screenshot(
                    path=str(DOCS_SCREENSHOTS / "report.png"),
                    full_page=True,
                    clip={"x": 0, "y": 0, "width": 1100, "height": 1750},
                )

            page.goto(evil.as_uri())
            text = page.locator("body").inner_text()
            assert printable(hostile.IMAGE_NEW) in text
            assert page.locator("body img[src='x']").count() == 0
            assert page.locator("script").count() == 0
            assert not dialogs
            context.close()
        finally:
            browser.close()
    assert (DOCS_SCREENSHOTS / "report.png").stat().st_size > 50_000
    assert (ARTIFACTS / "report.png").stat().st_size > 50_000
