"""The web pages in a real browser (Debian's Chromium through Playwright) over the real app.

Every assertion compares what the page shows with what the JSON API answers for the same
filters, over a ledger of the simulated fleet (and one of hostile label values for the XSS
case). Each test also fails on a dialog, an uncaught script error or a CSP violation.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, Route

import hostile
from browser import (
    ARTIFACTS,
    DOCS_SCREENSHOTS,
    PageWatch,
    api_get,
    new_context,
    open_page,
    query_of,
    renders,
    screenshot,
    serve_ledger,
    wait_rendered,
    ytick_labels,
)
from imagetrail.service.demo import build_demo_ledger

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("web-demo") / "demo.db"
    # No simulator signals: the pages of a ledger without Prometheus (the demo's verdicts
    # and capacity: tests/test_web_browser_demo.py).
    ledger, _ = build_demo_ledger(path, signals=False)
    ledger.close()
    return path


@pytest.fixture(scope="module")
def demo(demo_ledger: Path) -> Iterator[str]:
    """Base URL of the app over the simulated fleet."""
    with serve_ledger(demo_ledger) as url:
        yield url


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("web-hostile") / "hostile.db"
    hostile.build_hostile_ledger(path, end=time.time() // 60 * 60).close()
    with serve_ledger(path) as url:
        yield url


@pytest.fixture
def watch(browser: Browser) -> Iterator[PageWatch]:
    """A fresh light-mode page at 1280×800; checked for dialogs, errors and CSP at the end."""
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


def heatmap_cell(page: Page, row: int, column: int) -> tuple[float, float]:
    """Page coordinates of a heatmap cell (row = displayed row index, column = time index)."""
    point: list[float] = page.evaluate(
        """([row, column]) => {
            const gd = document.getElementById("plot");
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const at = () => {
                const box = gd.querySelector(".main-svg").getBoundingClientRect();
                return [box.left + xa._offset + xa.d2p(gd.data[0].x[column]),
                        box.top + ya._offset + ya.d2p(row)];
            };
            const [, y] = at();
            window.scrollBy(0, y - window.innerHeight / 2);  // the mouse only reaches the view
            return at();
        }""",
        [row, column],
    )
    return point[0], point[1]


def busiest_cell(answer: dict[str, Any], rows: list[int] | None = None) -> tuple[int, int]:
    """The (row, column) with the most containers, preferring the middle of the range."""
    best = (-1, 0, 0)
    middle = len(answer["times"]) // 2
    for r in rows if rows is not None else range(len(answer["images"])):
        for c in range(len(answer["times"]) // 4, 3 * len(answer["times"]) // 4):
            count = answer["counts"][r][c]
            score = count * 1000 - abs(c - middle)
            if count and score > best[0]:
                best = (score, r, c)
    assert best[0] > 0, "no non-empty heatmap cell"
    return best[1], best[2]


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def heatmap_answer(page: Page, action: Callable[[], object]) -> dict[str, Any]:
    """Run ``action`` and return the JSON of the heatmap request it causes."""
    with page.expect_response(lambda r: "/api/v1/heatmap" in r.url) as info:
        action()
    response = info.value
    assert response.status == 200
    asked = query_of(response.url)
    page_query = query_of(page.url)
    # The page asks for what its URL says (the toggles' defaults aside).
    for key in ("cluster", "namespace", "workload", "since", "from", "to"):
        assert asked.get(key) == page_query.get(key) or (
            key == "since" and "since" not in page_query
        )
    assert asked["sandbox"] == page_query.get("sandbox", ["false"])
    assert asked["digests"] == page_query.get("digests", ["false"])
    answer: dict[str, Any] = response.json()
    return answer


# ---------------------------------------------------------------------------- heatmap


def test_heatmap_rows_are_the_api_images(demo: str, page: Page) -> None:
    answer = heatmap_answer(page, lambda: page.goto(demo + "/"))
    wait_rendered(page)
    expected = api_get(demo, "/api/v1/heatmap", since="7d", sandbox="false", width=800)
    assert answer["images"] == expected["images"]
    assert len(expected["images"]) > 10
    assert not any("pause" in image for image in expected["images"])  # sandbox hidden
    assert ytick_labels(page, "#plot") == expected["images"]
    assert page.locator("#summary").inner_text().startswith(f"{len(expected['images'])} images")

    # Hover: the count and the workloads of the cell under the mouse.
    row, column = busiest_cell(answer)
    page.mouse.move(*heatmap_cell(page, row, column))
    hover = page.locator(".hoverlayer .hovertext")
    hover.wait_for()
    text = hover.text_content() or ""
    assert f"{answer['counts'][row][column]} containers" in text
    assert answer["images"][row] in text
    assert answer["workloads"][row][0] in text
    screenshot(page, "heatmap")


def test_heatmap_is_the_readme_screenshot(demo: str, page: Page) -> None:
    """The README's picture: a test artifact every run; docs/screenshots/heatmap.png itself
    only with IMAGETRAIL_UPDATE_SCREENSHOTS=1, so that a test run leaves the tree clean."""
    open_page(page, demo + "/")
    page.locator("#plot .yaxislayer-above text").first.wait_for()
    update = os.environ.get("IMAGETRAIL_UPDATE_SCREENSHOTS") == "1"
    target = DOCS_SCREENSHOTS if update else ARTIFACTS
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(target / "readme-heatmap.png" if not update else target / "heatmap.png")
    )
    assert (DOCS_SCREENSHOTS / "heatmap.png").stat().st_size > 20_000


def test_sandbox_toggle_and_digests_change_the_rows(demo: str, page: Page) -> None:
    open_page(page, demo + "/")
    with_sandbox = heatmap_answer(page, lambda: page.uncheck("#t-sandbox"))
    wait_rendered(page, 1)
    assert query_of(page.url)["sandbox"] == ["true"]
    # The simulated fleet records no pause containers: the page must ask for them all the same.
    # Same range and step as the page's request: "since=7d" moves with the clock between calls.
    same = {"from": with_sandbox["from"], "to": with_sandbox["to"], "step": with_sandbox["step"]}
    assert (
        with_sandbox["images"] == api_get(demo, "/api/v1/heatmap", sandbox="true", **same)["images"]
    )
    assert ytick_labels(page, "#plot") == with_sandbox["images"]

    by_digest = heatmap_answer(page, lambda: page.check("#t-digests"))
    wait_rendered(page, 2)
    labels = ytick_labels(page, "#plot")
    assert len(labels) == len(by_digest["images"])
    assert all("@sha256:" in label for label in labels)

    page.select_option("#t-order", "busy")
    wait_rendered(page, 3)
    totals = [sum(c or 0 for c in row) for row in by_digest["counts"]]
    busiest = by_digest["images"][max(range(len(totals)), key=lambda i: (totals[i], -i))]
    image, digest = busiest.split("@")
    assert ytick_labels(page, "#plot")[0] == f"{image}@{digest[:19]}"


def test_namespace_filter_narrows_the_rows(demo: str, page: Page) -> None:
    open_page(page, demo + "/")
    everything = ytick_labels(page, "#plot")
    answer = heatmap_answer(page, lambda: page.select_option("#f-namespace", ["payments"]))
    wait_rendered(page, 1)
    assert query_of(page.url)["namespace"] == ["payments"]
    shown = ytick_labels(page, "#plot")
    assert shown == answer["images"]
    assert 0 < len(shown) < len(everything)
    for workloads in answer["workloads"]:
        assert workloads
        assert all(w.split("/")[1] == "payments" for w in workloads), workloads


def test_drag_zooms_into_a_shorter_range(demo: str, page: Page) -> None:
    first = heatmap_answer(page, lambda: page.goto(demo + "/?since=7d"))
    wait_rendered(page)
    drag_area = page.locator("#plot .nsewdrag")
    drag_area.scroll_into_view_if_needed()
    box = drag_area.bounding_box()
    assert box is not None
    y = box["y"] + min(150, box["height"] / 2)  # inside the viewport
    left, right = box["x"] + box["width"] * 0.3, box["x"] + box["width"] * 0.6

    def drag() -> None:
        page.mouse.move(left, y)
        page.mouse.down()
        page.mouse.move((left + right) / 2, y, steps=4)
        page.mouse.move(right, y, steps=4)
        page.mouse.up()

    zoomed = heatmap_answer(page, drag)
    wait_rendered(page, 1)
    query = query_of(page.url)
    assert "since" not in query
    start, end = parse_time(query["from"][0]), parse_time(query["to"][0])
    old_start, old_end = parse_time(first["from"]), parse_time(first["to"])
    assert old_start < start < end < old_end
    assert end - start < 0.5 * (old_end - old_start)
    assert abs(parse_time(zoomed["from"]) - start) < 1
    assert abs(parse_time(zoomed["to"]) - end) < 1
    assert zoomed["step"] < first["step"]
    assert page.locator("[data-preset=custom]").get_attribute("aria-pressed") == "true"
    assert page.locator("#f-from").input_value() == query["from"][0]


def test_row_click_drills_down_to_the_workload_page(demo: str, page: Page) -> None:
    answer = heatmap_answer(page, lambda: page.goto(demo + "/"))
    wait_rendered(page)
    row, column = busiest_cell(answer)
    image = answer["images"][row]
    page.mouse.click(*heatmap_cell(page, row, column))
    wait_rendered(page, 1)
    assert query_of(page.url)["image"] == [image]
    audit = api_get(demo, "/api/v1/audit", image=image, **{"from": answer["from"]}, to=answer["to"])
    assert audit
    detail = page.locator("#detail")
    assert (detail.locator("h2 .image").text_content() or "") == image
    links = detail.locator("#detail-table tbody a.wl-link")
    ids = [f"{r['cluster']}/{r['namespace']}/{r['workload_kind']}/{r['workload']}" for r in audit]
    assert links.all_text_contents() == ids
    screenshot(page, "heatmap-drilldown")

    target = ids[0]
    links.first.click()
    page.wait_for_url("**/workload?**")
    wait_rendered(page)
    assert query_of(page.url)["workload"] == [target]
    assert page.locator("#workload-id").text_content() == target
    legend = page.locator("#timeline .legendtext").all_text_contents()
    assert image in legend


def test_url_state_round_trips(demo: str, page: Page) -> None:
    url = demo + "/?cluster=prod-eu&namespace=shop&since=24h&digests=true&order=busy"
    answer = heatmap_answer(page, lambda: page.goto(url))
    wait_rendered(page)
    assert parse_time(answer["from"]) == pytest.approx(time.time() - 86400, abs=60)
    assert all(w.startswith("prod-eu/shop/") for ws in answer["workloads"] for w in ws)
    selected = "(s) => Array.from(s.selectedOptions).map((o) => o.value)"
    assert page.eval_on_selector("#f-cluster", selected) == ["prod-eu"]
    assert page.eval_on_selector("#f-namespace", selected) == ["shop"]
    assert page.locator("[data-preset='24h']").get_attribute("aria-pressed") == "true"
    assert page.is_checked("#t-digests")
    assert page.locator("#t-order").input_value() == "busy"
    assert page.is_checked("#t-sandbox")

    wider = heatmap_answer(page, lambda: page.click("[data-preset='30d']"))
    wait_rendered(page, 1)
    assert query_of(page.url)["since"] == ["30d"]
    assert parse_time(wider["from"]) == pytest.approx(time.time() - 30 * 86400, abs=60)

    before = renders(page)
    back = heatmap_answer(page, page.go_back)
    wait_rendered(page, before)
    assert page.url == url
    assert back["images"] == answer["images"]
    assert page.locator("[data-preset='24h']").get_attribute("aria-pressed") == "true"
    assert page.eval_on_selector("#f-cluster", selected) == ["prod-eu"]


def test_api_failure_shows_a_banner_not_a_blank_page(demo: str, page: Page) -> None:
    def fail(route: Route) -> None:
        route.fulfill(
            status=502,
            content_type="application/json",
            body='{"error": "the Prometheus at http://prom:9090 did not answer", "hint": "x"}',
        )

    page.route("**/api/v1/heatmap*", fail)
    open_page(page, demo + "/")
    banner = page.locator("#banner")
    assert banner.is_visible()
    assert "the Prometheus at http://prom:9090 did not answer" in banner.inner_text()
    assert page.locator("#result .empty.error").is_visible()
    assert page.locator("#f-cluster option").count() == 3  # the controls still work
    screenshot(page, "heatmap-error")


def test_sync_failure_banner_keeps_showing_recorded_data(
    demo_ledger: Path, browser: Browser
) -> None:
    # A Prometheus that refuses connections: the background sync fails at once.
    with serve_ledger(
        demo_ledger, sync=True, prometheus_url="http://127.0.0.1:9", retries="0", timeout="2s"
    ) as url:
        deadline = time.monotonic() + 20
        while not api_get(url, "/api/v1/status")["sync"]["last_error"]:
            assert time.monotonic() < deadline, "the sync did not fail"
            time.sleep(0.1)
        status = api_get(url, "/api/v1/status")
        context = new_context(browser)
        try:
            page = context.new_page()
            w = PageWatch(page)
            open_page(page, url + "/")
            banner = page.locator("#banner-sync")
            assert banner.is_visible()
            text = banner.inner_text()
            assert "Prometheus unreachable" in text
            assert status["sync"]["last_error"] in text
            assert status["data_until"][:16].replace("T", " ") in text
            assert len(ytick_labels(page, "#plot")) > 10  # the recorded data is still there
            w.check()
        finally:
            context.close()


def test_dark_mode_follows_the_system(demo: str, browser: Browser) -> None:
    context = new_context(browser, dark=True)
    try:
        page = context.new_page()
        w = PageWatch(page)
        open_page(page, demo + "/")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        channels = [int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]]
        assert max(channels) < 60, background
        screenshot(page, "heatmap-dark")
        w.check()
    finally:
        context.close()


# ---------------------------------------------------------------------------- versions


def test_versions_table_and_bars(demo: str, page: Page) -> None:
    rows = api_get(demo, "/api/v1/versions")
    open_page(page, demo + "/versions")
    table = page.locator("#versions-table tbody tr")
    assert table.count() == len(rows)
    assert table.first.locator("td").first.inner_text().strip() == rows[0]["image"]
    assert table.first.locator("td.num").inner_text() == str(rows[0]["containers"])
    assert page.locator("#bars .bars .point").count() == len(rows)
    assert page.locator("#summary").inner_text().startswith(f"{len(rows)} versions")
    screenshot(page, "versions")


def test_versions_highlight_workloads_in_the_middle_of_a_rollout(demo: str, page: Page) -> None:
    # An instant halfway through a rollout, where the API says a workload runs two images.
    changes = api_get(demo, "/api/v1/changes", since="14d", kind="upgrade")
    instant = mixed = None
    for change in changes:
        if not change["finished"]:
            continue
        middle = (parse_time(change["started"]) + parse_time(change["finished"])) / 2
        at = datetime.fromtimestamp(middle, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        versions = api_get(demo, "/api/v1/versions", at=at)
        if not versions:
            continue
        summaries = api_get(demo, "/api/v1/workloads", at=versions[0]["at"])
        found = [w for w in summaries if len(w["images"]) > 1]
        if found:
            instant, mixed = at, found
            break
    assert mixed, "the simulated fleet has no rollout caught halfway"
    assert instant is not None
    page.goto(demo + "/versions")
    wait_rendered(page)
    page.fill("#f-at", instant)
    page.press("#f-at", "Enter")
    wait_rendered(page, 1)
    assert query_of(page.url)["at"] == [instant]
    ids = {f"{w['cluster']}/{w['namespace']}/{w['workload_kind']}/{w['workload']}" for w in mixed}
    listed = set(page.locator("#mixed a.wl-link").all_text_contents())
    assert listed == ids
    highlighted = page.locator("#versions-table tr.mixed")
    images = {image for w in mixed for image in w["images"]}
    shown = {t.strip() for t in highlighted.locator("td.image code").all_text_contents()}
    assert images <= shown
    screenshot(page, "versions-mixed")


# ---------------------------------------------------------------------------- workload


def test_workload_timeline_and_change_log(demo: str, page: Page) -> None:
    changes = api_get(demo, "/api/v1/changes", since="30d")
    rollback = next(c for c in changes if c["kind"] == "rollback")
    target = (
        f"{rollback['cluster']}/{rollback['namespace']}/{rollback['workload_kind']}/"
        + (rollback["workload"])
    )
    history = api_get(demo, "/api/v1/history", workload=target, since="30d")
    own = api_get(demo, "/api/v1/changes", workload=target, since="30d")
    open_page(page, demo + "/workload?workload=" + target)
    assert page.locator("#workload-id").text_content() == target
    legend = page.locator("#timeline .legendtext").all_text_contents()
    assert {h["image"] for h in history} <= set(legend)
    assert ytick_labels(page, "#timeline") == sorted({h["container"] for h in history})
    rows = page.locator("#changes-table tbody tr")
    assert rows.count() == len(own)
    assert "rollback" in rows.locator(".badge").all_text_contents()
    screenshot(page, "workload")

    page.select_option("#t-view", "pods")
    wait_rendered(page, 1)
    assert query_of(page.url)["view"] == ["pods"]
    spans = api_get(demo, "/api/v1/spans", workload=target, since="30d")
    pods = {f"{s['container']} · {s['pod']}" for s in spans}
    assert set(ytick_labels(page, "#timeline")) == pods
    screenshot(page, "workload-pods")


def test_workload_picker_without_a_workload(demo: str, page: Page) -> None:
    everything = api_get(demo, "/api/v1/workloads")
    open_page(page, demo + "/workload")
    assert page.locator("#picker tbody tr").count() == len(everything)
    page.fill("#pick-filter", "kafka")
    wanted = [w for w in everything if "kafka" in f"{w['workload']}/{w['container']}"]
    assert page.locator("#picker tbody tr").count() == len(wanted) > 0
    screenshot(page, "workload-picker")
    page.locator("#picker a.wl-link").first.click()
    page.wait_for_url("**/workload?**")
    wait_rendered(page)
    assert "kafka" in (page.locator("#workload-id").text_content() or "")


def test_ambiguous_workload_explains_and_offers_the_picker(demo: str, page: Page) -> None:
    open_page(page, demo + "/workload?workload=frontend")
    assert "matches 3 workloads" in page.locator("#banner").inner_text()
    page.locator("#picker").wait_for()
    assert page.locator("#pick-filter").input_value() == "frontend"


# ---------------------------------------------------------------------------- changes


def test_changes_filters_and_csv_download(demo: str, page: Page) -> None:
    open_page(page, demo + "/changes?since=30d")
    every = api_get(demo, "/api/v1/changes", since="30d")
    assert page.locator("#changes-table tbody tr").count() == len(every)
    # No Prometheus (and no simulator): the Impact column says so instead of guessing.
    impact = page.locator("#changes-table td.impact")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#changes-table td.impact')]"
        ".every((td) => td.textContent !== '…')"
    )
    assert set(impact.all_text_contents()) == {"needs Prometheus"}
    assert "prometheus" in (impact.first.locator("span").get_attribute("title") or "").lower()
    screenshot(page, "changes")

    page.check("#k-upgrade")
    wait_rendered(page, 1)
    page.select_option("#f-namespace", ["shop"])
    wait_rendered(page, 2)
    query = query_of(page.url)
    assert query["kind"] == ["upgrade"]
    assert query["namespace"] == ["shop"]
    wanted = api_get(demo, "/api/v1/changes", since="30d", kind="upgrade", namespace="shop")
    assert 0 < len(wanted) < len(every)
    rows = page.locator("#changes-table tbody tr")
    assert rows.count() == len(wanted)
    # The Kind column's badges (a rollout cut short has an "aborted" badge beside its time).
    assert set(rows.locator("td .badge[class*='kind-']").all_text_contents()) == {"upgrade"}
    assert set(rows.locator("td:nth-child(4)").all_text_contents()) == {"shop"}

    with page.expect_download() as info:
        page.click("#csv")
    download = info.value
    assert download.suggested_filename == "imagetrail-changes.csv"
    path = download.path()
    assert path is not None
    got = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    assert len(got) == len(wanted)
    assert {r["kind"] for r in got} == {"upgrade"}
    assert {r["namespace"] for r in got} == {"shop"}
    assert [r["started"] for r in got] == [c["started"] for c in wanted]


# ---------------------------------------------------------------------------- XSS


HOSTILE_TEXTS = (hostile.IMAGE_NEW, hostile.POD, hostile.WORKLOAD, hostile.CONTAINER)


def in_plot(value: str) -> str:
    """How a chart shows a label: SVG text would fold a newline into a space, so it is ⏎."""
    return value.replace("\n", "\u23ce")


def assert_inert(watch: PageWatch) -> None:
    page = watch.page
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("script:not([src])").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0
    watch.check()


SHOWN = {
    "heatmap": (hostile.IMAGE_OLD, hostile.IMAGE_NEW, hostile.WORKLOAD_ID),
    "versions": (hostile.IMAGE_NEW, hostile.WORKLOAD_ID),
    "workload": (
        hostile.IMAGE_OLD,
        hostile.IMAGE_NEW,
        hostile.POD,
        hostile.CONTAINER,
        hostile.WORKLOAD_ID,
    ),
    # The change column shows "repository  old tag → new tag".
    "changes": (
        hostile.CONTAINER,
        hostile.WORKLOAD,
        hostile.IMAGE_OLD.split(":", 1)[1],
        hostile.IMAGE_NEW.split(":", 1)[1],
    ),
    "picker": (hostile.WORKLOAD_ID, hostile.CONTAINER, hostile.IMAGE_NEW),
}


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("heatmap", "/?since=2d"),
        ("versions", "/versions"),
        ("workload", "/workload?view=pods&since=2d&workload="),
        ("changes", "/changes?since=2d"),
        ("picker", "/workload"),
    ],
)
def test_hostile_label_values_stay_text(
    hostile_app: str, watch: PageWatch, name: str, path: str
) -> None:
    page = watch.page
    if path.endswith("workload="):
        path += quote(hostile.WORKLOAD_ID, safe="/")
    open_page(page, hostile_app + path)
    if name == "heatmap":
        assert ytick_labels(page, "#plot") == [
            in_plot(hostile.IMAGE_OLD),
            in_plot(hostile.IMAGE_NEW),
        ]
        columns = page.evaluate("document.getElementById('plot').data[0].x.length")
        page.mouse.move(*heatmap_cell(page, 1, columns - 2))
        hover = page.locator(".hoverlayer .hovertext")
        hover.wait_for()
        assert in_plot(hostile.IMAGE_NEW) in (hover.text_content() or "")
        assert hostile.WORKLOAD_ID in (hover.text_content() or "")
        page.select_option("#t-row", hostile.IMAGE_NEW)
        wait_rendered(page, 1)
        assert page.locator("#detail h2 .image").text_content() == hostile.IMAGE_NEW
        assert page.locator("#detail a.wl-link").text_content() == hostile.WORKLOAD_ID
    elif name == "versions":
        assert page.locator("#versions-table td.image code").text_content() == hostile.IMAGE_NEW
    elif name == "workload":
        assert page.locator("#workload-id").text_content() == hostile.WORKLOAD_ID
        assert set(ytick_labels(page, "#timeline")) == {
            in_plot(f"{hostile.CONTAINER} · {hostile.POD}{n}") for n in ("", "2", "3", "4")
        }
        legend = page.locator("#timeline .legendtext").all_text_contents()
        assert {in_plot(hostile.IMAGE_OLD), in_plot(hostile.IMAGE_NEW)} <= set(legend)
    elif name == "changes":
        cells = page.locator("#changes-table tbody td").all_text_contents()
        assert hostile.CONTAINER in cells
    elif name == "picker":
        assert page.locator("#picker a.wl-link").text_content() == hostile.WORKLOAD_ID
    html_text = page.evaluate("document.body.textContent")
    svg_text = "".join(page.locator("svg text").all_text_contents())
    for value in SHOWN[name]:
        assert value in html_text or in_plot(value) in svg_text, f"{value!r} not on {name}"
    screenshot(page, f"hostile-{name}")
    assert_inert(watch)
    if name == "picker":  # the workload filter takes a hostile name too
        page.fill("#f-workload", hostile.WORKLOAD)
        page.press("#f-workload", "Enter")
        wait_rendered(page, 1)
        assert page.locator("#workload-id").text_content() == hostile.WORKLOAD_ID
        assert_inert(watch)
