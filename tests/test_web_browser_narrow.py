"""Chromium on the demo fleet at a laptop's 800 px and a desktop's 1280 px: what a new user sees.

The Changes table must fit the screen (Kind, Change and Impact on it without scrolling sideways)
with rows short enough to read several at once; image names wrap only after "/", ":" or "@",
never inside a name; the Capacity page without a workload offers the workloads to pick, and a
pick shows its rows. No script error, console error or CSP violation on the way.
"""

from __future__ import annotations

from collections.abc import Iterator
from statistics import median
from typing import Any

import pytest
from playwright.sync_api import Page

from browser import PageWatch, new_context, open_page, screenshot, serve_ledger
from imagetrail.service.demo import build_demo_ledger

pytestmark = pytest.mark.slow

# Every place a line break falls inside a <code class="image">, with the character before it:
# the text of each character is measured where it was drawn.
BREAKS = """(selector) => {
  const found = [];
  for (const code of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    let top = null, before = null, node;
    while ((node = walker.nextNode())) {
      for (let i = 0; i < node.length; i++) {
        if (/\\s/.test(node.data[i])) continue;
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        if (!rect) continue;
        if (top !== null && rect.top > top + 2) {
          found.push({ image: code.textContent, before, at: node.data.slice(i) });
        }
        top = rect.top;
        before = node.data[i];
      }
    }
  }
  return found;
}"""

HEADERS = """(selector) => [...document.querySelectorAll(selector + ' thead th')].map((th) => {
  const r = th.getBoundingClientRect();
  return { text: th.textContent, left: r.left, right: r.right, width: r.width,
           shown: getComputedStyle(th).display !== 'none' && r.width > 0 };
})"""

FITS = """(selector) => {
  const table = document.querySelector(selector);
  const box = table.parentElement;
  return { page: document.documentElement.scrollWidth, viewport: window.innerWidth,
           table: table.getBoundingClientRect().right, scroll: box.scrollWidth,
           box: box.clientWidth };
}"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("browser-narrow") / "demo.db"
    ledger, _ = build_demo_ledger(path)
    ledger.close()
    with serve_ledger(path) as url:  # as `imagetrail demo` serves it: no Prometheus
        yield url


class Watched:
    """A page at one width, with its script errors, console errors and CSP violations."""

    def __init__(self, browser: Any, width: int) -> None:
        self.context = new_context(browser)
        page = self.context.new_page()
        page.set_viewport_size({"width": width, "height": 800})
        self.watch = PageWatch(page)
        self.console: list[str] = []
        page.on(
            "console",
            lambda m: self.console.append(m.text) if m.type in ("error", "warning") else None,
        )
        self.page: Page = page

    def check(self) -> None:
        self.watch.check()
        assert not self.console, f"console errors: {self.console}"
        self.context.close()


def _fits(page: Page, selector: str) -> None:
    fit = page.evaluate(FITS, selector)
    assert fit["page"] <= fit["viewport"], fit  # the page does not scroll sideways
    assert fit["scroll"] <= fit["box"] + 1, fit  # nor does the table in its box
    assert fit["table"] <= fit["viewport"], fit


def _no_mid_word_breaks(page: Page, selector: str) -> int:
    breaks = page.evaluate(BREAKS, selector)
    assert all(b["before"] in "/:@" for b in breaks), [
        b for b in breaks if b["before"] not in "/:@"
    ][:5]
    return len(breaks)


@pytest.mark.parametrize("width", [800, 1280])
def test_the_changes_table_fits_the_screen(demo: str, browser: Any, width: int) -> None:
    w = Watched(browser, width)
    page = w.page
    open_page(page, f"{demo}/changes?since=7d")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#changes-table td.impact')]"
        ".every((td) => td.textContent !== '…')",
        timeout=60_000,
    )
    _fits(page, "#changes-table")
    headers = {h["text"]: h for h in page.evaluate(HEADERS, "#changes-table")}
    for name in ("Started", "Workload", "Kind", "Change", "Impact"):
        h = headers[name]
        assert h["shown"], (name, h)
        assert h["left"] >= 0, (name, h)
        assert h["right"] <= width, (name, h)
    # Nothing is hidden: every column's header is on screen (folded ones under another).
    assert all(h["shown"] and h["right"] <= width for h in headers.values()), headers
    heights = page.evaluate(
        "[...document.querySelectorAll('#changes-table tbody tr')].map((r) => r.offsetHeight)"
    )
    assert len(heights) > 10
    # Before: ~130 px rows at 800 px, three to a screen.
    assert median(heights) <= 95, heights
    assert max(heights) <= 160, heights
    # Kind, Change and Impact of a row are side by side (one row, not a card per cell).
    row = page.locator("#changes-table tbody tr").first
    tops = [
        (row.locator(f"td.col-{c}").bounding_box() or {"y": -1})["y"]
        for c in ("kind", "change", "impact")
    ]
    assert max(tops) - min(tops) < 3, tops
    assert _no_mid_word_breaks(page, "#changes-table code.image") >= (1 if width < 1000 else 0)
    screenshot(page, f"changes-{width}")
    # An impact's evidence opens under its row, across the whole width, and still fits.
    page.locator("#changes-table button.verdict").first.click()
    page.locator("#impact-chart .main-svg").first.wait_for()
    detail = page.locator("#changes-table tr.impact-detail > td").bounding_box()
    assert detail is not None
    assert detail["width"] > width * 0.8, detail
    assert page.locator(".impact-detail table.evidence tbody tr").count() >= 1
    _fits(page, "#changes-table")
    screenshot(page, f"changes-{width}-impact")
    w.check()


def test_capacity_without_a_workload_offers_workloads_and_fits_800px(
    demo: str, browser: Any
) -> None:
    w = Watched(browser, 800)
    page = w.page
    open_page(page, f"{demo}/capacity")
    picks = page.locator("#capacity-picks a")
    assert picks.count() >= 5
    assert "Pick a workload" in (page.locator("#pick-hint").text_content() or "")
    screenshot(page, "capacity-picker-800")
    names = picks.all_text_contents()
    target = next(n for n in names if n.endswith("/orders-api"))
    page.locator("#capacity-picks a", has_text=target).first.click()
    page.locator("#capacity-table tbody tr").first.wait_for(timeout=60_000)
    assert f"workload={target.replace('/', '%2F')}" in page.url
    rows = page.locator("#capacity-table tbody tr")
    assert rows.count() >= 2
    table = page.locator("#capacity-table").text_content() or ""
    for tag in ("1.8.0", "1.8.1", "1.9.0"):
        assert tag in table
    _fits(page, "#capacity-table")
    headers = page.evaluate(HEADERS, "#capacity-table")
    assert all(h["shown"] and h["right"] <= 800 for h in headers), headers
    _no_mid_word_breaks(page, "#capacity-table code.image")
    # The Version cell names the whole reference in its title (with the digest).
    version = page.locator("#capacity-table code.image").first
    assert (version.get_attribute("title") or "").startswith(version.text_content() or "?")
    screenshot(page, "capacity-800")
    w.check()


def test_long_image_names_wrap_only_at_separators(demo: str, browser: Any) -> None:
    # Narrower still: names must wrap, and only after "/", ":" or "@".
    w = Watched(browser, 560)
    page = w.page
    open_page(page, f"{demo}/capacity?workload=prod-eu/orders/orders-api&since=14d")
    page.locator("#capacity-table tbody tr").first.wait_for(timeout=60_000)
    assert _no_mid_word_breaks(page, "#capacity-table code.image") >= 1
    styles = page.evaluate(
        "[...document.querySelectorAll('#capacity-table code.image .seg')]"
        ".map((s) => getComputedStyle(s).whiteSpace)"
    )
    assert styles
    assert set(styles) == {"pre"}, styles
    open_page(page, f"{demo}/changes?since=7d")
    assert _no_mid_word_breaks(page, "#changes-table code.image") >= 1
    screenshot(page, "changes-560")
    w.check()
