"""Chromium on the demo fleet: the headline features are there without Prometheus.

A new user runs ``imagetrail demo`` and opens the pages: the Changes page must show impact
verdicts (a ``regression`` badge with its evidence), the Capacity page a row per version.
The ledger is the one ``imagetrail demo`` writes; its signals come from the simulator.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright

from browser import PageWatch, launch, new_context, open_page, screenshot, serve_ledger
from imagetrail.service.demo import build_demo_ledger

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("browser-demo") / "demo.db"
    ledger, _ = build_demo_ledger(path)
    ledger.close()
    # No Prometheus URL: the settings of `imagetrail demo`.
    with serve_ledger(path) as url:
        yield url


def test_the_demo_shows_a_regression_badge_and_capacity_rows(demo: str) -> None:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = new_context(browser)
            watch = PageWatch(context.new_page())
            page = watch.page
            open_page(page, f"{demo}/changes?since=14d&namespace=orders")
            page.wait_for_function(
                "() => [...document.querySelectorAll('#changes-table td.impact')]"
                ".every((td) => td.textContent !== '…')",
                timeout=60_000,
            )
            cells = page.locator("#changes-table td.impact").all_text_contents()
            assert "needs Prometheus" not in cells
            badges = page.locator("#changes-table button.verdict")
            verdicts = sorted(b.text_content() or "" for b in badges.all())
            assert verdicts.count("regression") == 1, verdicts
            assert "improvement" in verdicts
            assert "no-change" in verdicts
            page.locator("#changes-table button.verdict-regression").click()
            page.locator("#impact-chart .main-svg").first.wait_for()
            evidence = page.locator(".impact-detail table.evidence tbody tr")
            assert "restarts" in (evidence.first.text_content() or "")
            screenshot(page, "demo-changes-impact")

            open_page(page, f"{demo}/capacity?workload=orders/orders-api&since=14d")
            rows = page.locator("#capacity-table tbody tr")
            rows.first.wait_for(timeout=60_000)
            assert rows.count() == 3
            table = page.locator("#capacity-table").text_content() or ""
            for tag in ("1.8.0", "1.8.1", "1.9.0"):
                assert tag in table
            screenshot(page, "demo-capacity")
            watch.check()
            context.close()
        finally:
            browser.close()
