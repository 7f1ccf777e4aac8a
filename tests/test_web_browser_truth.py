"""What the pages show when the picture could mislead (issue 10), in a real Chromium.

The mixed mark belongs to the container that runs several versions, a custom range is drawn
exactly, a version keeps its colour on every page and range, and a version that ran for
minutes stays visible and listed in a 30-day view. Times come from the API's own answers
over the simulated fleet (the demo ends at the current hour), never hard-coded.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page

import hostile
from browser import (
    PageWatch,
    api_get,
    attempt_text,
    iso,
    new_context,
    open_page,
    screenshot,
    serve_ledger,
    shown_duration,
    shown_time,
    ts,
)
from imagetrail.ledger import Ledger
from imagetrail.model import Span
from imagetrail.service.demo import build_demo_ledger
from imagetrail.service.sync import rederive_changes

pytestmark = pytest.mark.slow

CART = "prod-eu/shop/Deployment/cart"
DAY = 86400.0
HOUR = 3600.0
# The pages' shortest drawn bar is 4 px; anti-aliasing may take a fraction of a pixel off.
MIN_DRAWN_PX = 3.5


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the app over the simulated fleet."""
    path = tmp_path_factory.mktemp("web-truth") / "demo.db"
    ledger, _ = build_demo_ledger(path)
    ledger.close()
    with serve_ledger(path) as url:
        yield url


# A cluster that stopped sending data two hours before the end (its name tries to become
# markup), one gone for eight days, and one that is fine.
SILENT = f"eu{hostile.PAYLOAD}\"'<b>x"
GONE = "ap-gone<script>alert(5)</script>"
LIVE = "us-live"
SILENT_IMAGE = "ghcr.io/acme/shop:1.0"
LIVE_IMAGE = "ghcr.io/acme/shop:1.1"


def build_silent_ledger(path: Path, *, end: float) -> None:
    def span(cluster: str, image: str, first: float, last: float, n: int) -> Span:
        return Span(
            cluster=cluster,
            namespace="shop",
            workload_kind="Deployment",
            workload="web",
            pod=f"web-{n}",
            container="web",
            image=image,
            digest="sha256:" + f"{n}" * 64,
            first_seen=first,
            last_seen=last,
            pod_uid=f"uid-{cluster}-{n}",
        )

    start = end - 10 * DAY
    spans = [
        span(LIVE, LIVE_IMAGE, start, end, 1),
        span(SILENT, SILENT_IMAGE, start, end - 2 * HOUR, 2),
        span(GONE, SILENT_IMAGE, start, end - 8 * DAY, 3),
    ]
    ledger = Ledger.open(path)
    try:
        ledger.merge_spans(spans, sync_key="silent|test|", synced_from=start, synced_until=end)
        rederive_changes(ledger, tolerance=60)
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def silent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float]]:
    """Base URL of the app over a fleet with a silent and a gone cluster; the data's end."""
    path = tmp_path_factory.mktemp("web-silent") / "silent.db"
    end = time.time() // 60 * 60
    build_silent_ledger(path, end=end)
    with serve_ledger(path) as url:
        yield url, end


@pytest.fixture
def watch(browser: Browser) -> Iterator[PageWatch]:
    context = new_context(browser)
    page = context.new_page()
    w = PageWatch(page)
    try:
        yield w
        w.check()
    finally:
        context.close()


@pytest.fixture
def page(watch: PageWatch) -> Page:
    return watch.page


# ---------------------------------------------------------------------------- helpers


def plotly_time(value: str) -> float:
    """A plotly date-axis value ("2026-11-23 22:00" or "…:00.5", UTC wall time) in seconds."""
    text = value.strip().replace(" ", "T")
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text):
        text += ":00"
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def rgb(color: str) -> tuple[int, int, int]:
    """``#rrggbb`` or ``rgb(r, g, b)`` as a tuple."""
    if color.startswith("#"):
        return (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16))
    found = re.fullmatch(r"rgba?\((\d+),\s*(\d+),\s*(\d+)(?:,\s*[\d.]+)?\)", color.strip())
    assert found, color
    r, g, b = (int(x) for x in found.groups())
    return (r, g, b)


def data_end(base: str) -> float:
    end = api_get(base, "/api/v1/status")["data_until"]
    assert isinstance(end, str)
    return ts(end)


def cart_rollout(base: str) -> dict[str, Any]:
    """The prod-eu cart container's upgrade that a rollback followed within the hour: two
    versions side by side for about 20 minutes, the envoy sidecar unchanged."""
    end = data_end(base)
    changes = api_get(
        base, "/api/v1/changes", workload=CART, **{"from": iso(end - 30 * DAY), "to": iso(end)}
    )
    mine = [c for c in changes if c["container"] == "cart"]
    for first, second in itertools.pairwise(mine):
        if (
            first["kind"] == "upgrade"
            and second["kind"] == "rollback"
            and ts(second["started"]) - ts(first["started"]) < HOUR
        ):
            return {"upgrade": first, "rollback": second}
    raise AssertionError(f"the demo fleet has no quick cart rollback: {mine}")


def mixed_instant(base: str) -> str:
    """An instant in the middle of the cart rollout, checked against /api/v1/workloads."""
    rollout = cart_rollout(base)
    start, stop = ts(rollout["upgrade"]["started"]), ts(rollout["rollback"]["started"])
    at = iso((start + stop) / 2)
    rows = api_get(base, "/api/v1/workloads", workload=CART, at=at)
    images = {r["container"]: r["images"] for r in rows}
    assert len(images["cart"]) == 2, images
    assert len(images["envoy"]) == 1, images
    return at


def plot_data(page: Page, plot: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = page.evaluate(
        "(id) => JSON.parse(JSON.stringify(document.getElementById(id).data))", plot
    )
    return data


def trace_colors(page: Page) -> dict[str, str]:
    """The workload timeline's colour per version (legend name → colour)."""
    return {
        t["name"]: t["marker"]["color"] for t in plot_data(page, "timeline") if t["type"] == "bar"
    }


def workload_url(base: str, workload: str, start: float, end: float) -> str:
    return (
        base + "/workload?" + urlencode({"workload": workload, "from": iso(start), "to": iso(end)})
    )


# ---------------------------------------------------------------------------- 1. mixed


def test_mixed_mark_sits_on_the_container_that_runs_two_versions(demo: str, page: Page) -> None:
    at = mixed_instant(demo)
    rows = api_get(demo, "/api/v1/versions", at=at)
    summaries = api_get(demo, "/api/v1/workloads", at=rows[0]["at"])
    # What should be marked: a version of a workload container that runs several at once.
    mixed = {
        (f"{w['cluster']}/{w['namespace']}/{w['workload_kind']}/{w['workload']}", image)
        for w in summaries
        if len(w["images"]) > 1
        for image in w["images"]
    }
    expected = [any((wl, r["image"]) in mixed for wl in r["workloads"]) for r in rows]
    envoy = next(i for i, r in enumerate(rows) if "envoy" in r["image"] and CART in r["workloads"])
    carts = [
        i for i, r in enumerate(rows) if "/acme/cart:" in r["image"] and CART in r["workloads"]
    ]
    assert len(carts) == 2
    assert not expected[envoy]
    assert all(expected[i] for i in carts)

    open_page(page, demo + "/versions?" + urlencode({"at": at}))
    table = page.locator("#versions-table tbody tr")
    assert table.count() == len(rows)
    badges = [table.nth(i).locator(".badge", has_text="mixed").count() for i in range(len(rows))]
    assert [b > 0 for b in badges] == expected
    assert table.nth(envoy).locator(".badge", has_text="mixed").count() == 0
    assert "mixed" not in (table.nth(envoy).get_attribute("class") or "")
    for i in carts:
        assert "mixed" in (table.nth(i).get_attribute("class") or "")
    # The bars: hatched exactly where the table says mixed.
    shapes = plot_data(page, "bars")[0]["marker"]["pattern"]["shape"]
    assert [s != "" for s in shapes] == expected
    # The list names the container, not its sidecar.
    items = page.locator(f'#mixed li[data-workload="{CART}"]')
    assert items.count() == 1
    assert items.first.get_attribute("data-container") == "cart"
    assert page.locator('#mixed li[data-container="envoy"]').count() == 0
    screenshot(page, "truth-versions-mixed")


# ---------------------------------------------------------------------------- 2. range


def test_workload_page_draws_exactly_the_custom_range(demo: str, page: Page) -> None:
    started = ts(cart_rollout(demo)["upgrade"]["started"])
    start = started // HOUR * HOUR - 2 * HOUR
    end = start + 3 * HOUR
    open_page(page, workload_url(demo, CART, start, end))
    assert page.locator("#workload-id").text_content() == CART
    for layout in ("layout", "_fullLayout"):
        axis = page.evaluate(
            f"document.getElementById('timeline').{layout}.xaxis.range.map(String)"
        )
        assert [plotly_time(v) for v in axis] == [start, end], (layout, axis)
    assert (
        f"{shown_time(iso(start))} → {shown_time(iso(end))}"
        in page.locator("#summary").inner_text()
    )
    screenshot(page, "truth-workload-range")


# ---------------------------------------------------------------------------- 3. colour


def test_a_version_keeps_its_colour_across_pages_and_ranges(demo: str, page: Page) -> None:
    rollout = cart_rollout(demo)
    old, new = rollout["upgrade"]["from_image"], rollout["upgrade"]["to_image"]
    end = data_end(demo)

    # The Versions page in the middle of the rollout: both cart versions, by bar and swatch.
    at = mixed_instant(demo)
    open_page(page, demo + "/versions?" + urlencode({"at": at}))
    bars = plot_data(page, "bars")[0]
    shown = page.locator("#versions-table tbody tr")
    images = [t.strip() for t in shown.locator("td.image code").all_text_contents()]
    versions_page = {image: bars["marker"]["color"][i] for i, image in enumerate(images)}
    for i, image in enumerate(images):
        swatch = shown.nth(i).locator(".swatch")
        css = swatch.evaluate("(e) => getComputedStyle(e).backgroundColor")
        assert rgb(css) == rgb(versions_page[image]), image

    # The workload page over 30 days, over the three hours of the rollout, and over a range
    # in which a later version appears second instead of third.
    open_page(page, workload_url(demo, CART, end - 30 * DAY, end))
    month = trace_colors(page)
    started = ts(rollout["upgrade"]["started"])
    open_page(page, workload_url(demo, CART, started - 2 * HOUR, started + HOUR))
    rollout_hours = trace_colors(page)
    later = [
        c
        for c in api_get(
            demo, "/api/v1/changes", workload=CART, **{"from": iso(end - 30 * DAY), "to": iso(end)}
        )
        if c["container"] == "cart" and ts(c["started"]) > started + HOUR
    ]
    assert later, "no cart change after the rollback"
    late_start = ts(later[0]["started"])
    open_page(page, workload_url(demo, CART, late_start - HOUR, end))
    late = trace_colors(page)
    newer = later[0]["to_image"]
    legend = page.locator("#timeline .legendtext").all_text_contents()
    assert newer in legend
    assert new not in legend

    for image in (old, new):
        assert month[image] == rollout_hours[image] == versions_page[image], image
    assert late[newer] == month[newer]
    assert late[old] == month[old]
    # What plotly drew: the legend's sample of each version has that colour.
    compared = 0
    for i, name in enumerate(legend):
        if name not in late:  # the change and deployment markers
            continue
        fill = page.locator("#timeline .legend .traces").nth(i).locator(".legendpoints path")
        style = fill.first.evaluate("(e) => getComputedStyle(e).fill")
        if style.startswith("url("):  # a hatched sample: the colour is the pattern's ground
            continue
        assert rgb(style) == rgb(late[name]), name
        compared += 1
    assert compared >= 2

    # The heatmap's "who ran it" panel shows the same colour beside the image.
    open_page(page, demo + "/?" + urlencode({"since": "30d", "image": new}))
    page.locator("#detail .swatch").wait_for()
    css = page.locator("#detail .swatch").evaluate("(e) => getComputedStyle(e).backgroundColor")
    assert rgb(css) == rgb(month[new])


# ---------------------------------------------------------------------------- 4. short


def test_a_short_version_is_drawn_and_listed_in_a_30_day_view(demo: str, page: Page) -> None:
    end = data_end(demo)
    start = end - 30 * DAY
    history = api_get(
        demo, "/api/v1/history", workload=CART, **{"from": iso(start), "to": iso(end)}
    )
    short = min(history, key=lambda h: ts(h["last_seen"]) - ts(h["first_seen"]))
    lasted = ts(short["last_seen"]) - ts(short["first_seen"])
    assert 5 * 60 < lasted < HOUR, short

    open_page(page, workload_url(demo, CART, start, end))
    axis_px = page.evaluate("document.getElementById('timeline')._fullLayout.xaxis._length")
    # Drawn to scale it would be less than a pixel and a half: the test means something.
    assert lasted / (end - start) * axis_px < 1.5
    data = plot_data(page, "timeline")
    index = next(
        i for i, t in enumerate(data) if t["type"] == "bar" and t["name"] == short["image"]
    )
    trace = page.locator("#timeline .barlayer .trace").nth(index)
    boxes = [p.bounding_box() for p in trace.locator(".point path").all()]
    widths = [b["width"] for b in boxes if b is not None]
    assert widths
    assert min(widths) >= MIN_DRAWN_PX, widths

    rows = page.locator("#versions-list tbody tr")
    assert rows.count() == len(history)
    listed = [
        [cell.strip() for cell in rows.nth(i).locator("td").all_text_contents()]
        for i in range(rows.count())
    ]
    wanted = [
        short["container"],
        short["image"],
        shown_time(short["first_seen"]),
        shown_time(short["last_seen"]),
        shown_duration(lasted),
    ]
    assert wanted in [row[:2] + row[3:] for row in listed]  # all but the digest column
    screenshot(page, "truth-workload-short-version")


# ---------------------------------------------------------------------------- 5. cut short


CUT = ("aborted", "superseded", "failed")


def finished_text(c: dict[str, Any]) -> str:
    """What the Finished column must say for a change (whitespace collapsed)."""
    why = attempt_text(c["reasons"], c["pods"], c["pods_ran"], c["waited"])
    if c["state"] in CUT:
        said = f"{c['state']} {shown_time(c['ended'])}"
    elif c["state"] == "stuck":
        said = "stuck"
    elif c["state"] == "in-progress":
        said = "in progress"
    else:
        said = shown_time(c["finished"])
    return f"{said} {why}" if why else said


def test_change_logs_say_how_a_rollout_ended(demo: str, page: Page) -> None:
    end = data_end(demo)
    window = {"from": iso(end - 30 * DAY), "to": iso(end)}
    changes = api_get(demo, "/api/v1/changes", **window)
    cut = [c for c in changes if c["state"] in (*CUT, "stuck")]
    # The demo's cart upgrade that its rollback overtook.
    rollout = cart_rollout(demo)["upgrade"]
    assert rollout["state"] == "aborted"
    assert rollout["cut_short"] == "aborted"
    assert rollout["finished"] is None

    open_page(page, demo + "/changes?" + urlencode(window))
    rows = page.locator("#changes-table tbody tr")
    assert rows.count() == len(changes)
    shown = [
        [" ".join(cell.split()) for cell in rows.nth(i).locator("td").all_text_contents()[:6]]
        for i in range(rows.count())
    ]
    expected = [
        [
            shown_time(c["started"]),
            finished_text(c),
            c["cluster"],
            c["namespace"],
            f"{c['workload_kind']}/{c['workload']}",
            c["container"],
        ]
        for c in changes
    ]
    assert sorted(shown) == sorted(expected)
    # Newest first by start: a rollout that never finished is not put first for that.
    starts = [row[0] for row in shown]
    assert starts == sorted(starts, reverse=True)
    badges = rows.locator("td.finished .badge")
    assert sorted(badges.all_text_contents()) == sorted(c["state"] for c in cut)
    assert "in progress" not in [row[1] for row in shown if row[1].startswith(("aborted", "sup"))]

    # The workload page's change log says the same.
    started = ts(rollout["started"])
    open_page(page, workload_url(demo, CART, started - 2 * HOUR, started + 2 * HOUR))
    cells = page.locator("#changes-table tbody td.finished").all_text_contents()
    assert f"aborted {shown_time(rollout['ended'])}" in [c.strip() for c in cells]
    assert "in progress" not in cells
    screenshot(page, "truth-workload-aborted")


# ---------------------------------------------------------------------------- 5. silence


def test_silent_clusters_have_a_banner_and_their_rows_a_stale_badge(
    silent: tuple[str, float], watch: PageWatch
) -> None:
    base, end = silent
    page = watch.page
    status = api_get(base, "/api/v1/status")
    by_name = {s["cluster"]: s for s in status["silent_clusters"]}
    assert set(by_name) == {SILENT, GONE}
    assert by_name[SILENT]["gone"] is False
    assert by_name[GONE]["gone"] is True
    assert ts(by_name[SILENT]["last_data"]) == end - 2 * HOUR
    versions = api_get(base, "/api/v1/versions")
    stale = {r["image"]: r["stale"] for r in versions}
    assert stale == {SILENT_IMAGE: True, LIVE_IMAGE: False}

    def minute(t: str) -> str:
        return datetime.fromtimestamp(ts(t), UTC).strftime("%Y-%m-%d %H:%M UTC")

    for path in ("/", "/versions", "/workload", "/changes?since=30d"):
        open_page(page, base + path)
        lines = page.locator("#banner-silent li")
        assert lines.count() == 2, path
        assert page.locator("#banner").is_visible()
        texts = {
            lines.nth(i).get_attribute("data-cluster"): lines.nth(i).inner_text() for i in range(2)
        }
        assert texts[SILENT] == (
            f"{SILENT}: no data since {minute(by_name[SILENT]['last_data'])} (2 h)"
            " \u2014 its last known versions are shown, marked stale"
        )
        assert texts[GONE] == (
            f"{GONE} gone: silent since {minute(by_name[GONE]['last_data'])}, no longer shown"
        )
        # The names are text, never markup.
        assert page.locator("#banner img, #banner script, #banner b").count() == 0
        assert page.locator("img[src=x]").count() == 0
        watch.check()

        if path == "/versions":
            rows = page.locator("#versions-table tbody tr")
            badges = {
                (rows.nth(i).locator("td.image code").text_content() or ""): rows.nth(i)
                .locator(".badge.stale")
                .count()
                for i in range(rows.count())
            }
            assert badges == {SILENT_IMAGE: 1, LIVE_IMAGE: 0}
            screenshot(page, "truth-silent-versions")
        if path == "/workload":
            rows = page.locator("#picker tbody tr")
            marked = {
                (rows.nth(i).locator("a.wl-link").text_content() or "").removesuffix(
                    "/shop/Deployment/web"
                ): rows.nth(i).locator(".badge.stale").count()
                for i in range(rows.count())
            }
            # The gone cluster's workload is listed (it ran in the range) but runs nothing.
            assert marked == {SILENT: 1, LIVE: 0, GONE: 0}
            gone = rows.filter(has_text="ap-gone")
            assert gone.locator("td").nth(2).inner_text().strip() == "\u2014"
            screenshot(page, "truth-silent-picker")
