"""Time to a drawn fleet heatmap in Chromium (Playwright driving Debian's Chromium).

Each load is a new browser context (empty cache, so plotly.js comes over the wire every
time, as on a first visit). The time is measured by the page's own clock: from navigation
start (``performance.timeOrigin``) to the first animation frame in which the heatmap trace
is in the DOM (plotly draws a heatmap as an ``<image>`` inside ``.heatmaplayer``). The page
also counts finished renders in ``body[data-rendered]``; that time is recorded as well.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Callable
from typing import Any

import bench._paths  # noqa: F401  (puts tests/ on sys.path)

# The browser tests' Chromium, flags and viewport: one definition (tests/browser.py).
from browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT

HEATMAP_DRAWN = "#result .main-svg .heatmaplayer image"
# Resolves with performance.now() in the first frame where the heatmap trace exists.
_WAIT_DRAWN = """(selector) => new Promise((resolve) => {
  const check = () => document.querySelector(selector)
    ? resolve(performance.now()) : requestAnimationFrame(check);
  check();
})"""
_WAIT_RENDERED = """() => new Promise((resolve) => {
  const check = () => document.body && document.body.dataset.rendered
    ? resolve(performance.now()) : requestAnimationFrame(check);
  check();
})"""
_TIMINGS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource").map((r) => ({
    name: r.name, start: r.startTime, end: r.responseEnd, bytes: r.transferSize }));
  return { domContentLoaded: nav ? nav.domContentLoadedEventEnd : null, resources: res };
}"""


def available(executable: str = CHROMIUM) -> bool:
    """Whether Chromium and the Playwright package are both there."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return shutil.which(executable) is not None


def _resource(timings: dict[str, Any], part: str) -> dict[str, Any] | None:
    for r in timings["resources"]:
        if part in r["name"]:
            return {
                "start_ms": round(r["start"], 1),
                "end_ms": round(r["end"], 1),
                "bytes": r["bytes"],
                "url": r["name"].split("//", 1)[-1].split("/", 1)[-1],
            }
    return None


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 1) if known else None


def time_to_heatmap(
    url: str,
    *,
    loads: int = 5,
    timeout_ms: float = 120_000,
    executable: str = CHROMIUM,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Load ``url`` ``loads`` times; the median and every load's figures (milliseconds)."""
    from playwright.sync_api import sync_playwright

    runs: list[dict[str, Any]] = []
    console_errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            version = browser.version
            for k in range(loads):
                context = browser.new_context(viewport=VIEWPORT)
                try:
                    page = context.new_page()
                    page.on(
                        "console",
                        lambda m: console_errors.append(m.text) if m.type == "error" else None,
                    )
                    page.on("pageerror", lambda e: console_errors.append(str(e)))
                    page.goto(url, wait_until="commit", timeout=timeout_ms)
                    drawn = page.evaluate(_WAIT_DRAWN, HEATMAP_DRAWN)
                    rendered = page.evaluate(_WAIT_RENDERED)
                    timings = page.evaluate(_TIMINGS)
                    rows = page.evaluate(
                        "() => document.querySelectorAll('#result .main-svg .ytick').length"
                    )
                finally:
                    context.close()
                api = _resource(timings, "/api/v1/heatmap")
                run = {
                    "drawn_ms": round(drawn, 1),
                    # the page's own work once the answer is in: parse, plotly layout and draw
                    "drawn_after_api_ms": round(drawn - api["end_ms"], 1) if api else None,
                    "rendered_ms": round(rendered, 1),
                    "dom_content_loaded_ms": round(timings["domContentLoaded"] or 0, 1),
                    "heatmap_api": api,
                    "plotly_js": _resource(timings, "plotly.min.js"),
                    "y_ticks": rows,
                }
                runs.append(run)
                log(
                    f"    load {k + 1}/{loads}: heatmap drawn at {drawn:.0f} ms "
                    f"(API {api['end_ms'] - api['start_ms'] if api else float('nan'):.0f} ms)"
                )
        finally:
            browser.close()
    return {
        "url": url,
        "chromium": version,
        "viewport": VIEWPORT,
        "drawn_when": f"first animation frame with `{HEATMAP_DRAWN}` in the DOM",
        "loads": loads,
        "drawn_ms_median": round(statistics.median(r["drawn_ms"] for r in runs), 1),
        "rendered_ms_median": round(statistics.median(r["rendered_ms"] for r in runs), 1),
        "drawn_after_api_ms_median": _median([r["drawn_after_api_ms"] for r in runs]),
        "dom_content_loaded_ms_median": _median([r["dom_content_loaded_ms"] for r in runs]),
        "runs": runs,
        "console_errors": console_errors[:10],
    }
