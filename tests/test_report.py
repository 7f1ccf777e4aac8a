"""The report: its numbers on the simulated fleet (checked against the ledger directly), its
HTML and Markdown with hostile label values, files, and the `imagetrail report` command."""

from __future__ import annotations

import time
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

import hostile
from clirun import assert_one_error, invoke
from imagetrail.ledger import Ledger
from imagetrail.model import Change, ChangeKind, CutShort, Impact
from imagetrail.report import (
    Report,
    build_report,
    make_report,
    md,
    redact_url,
    render_html,
    render_markdown,
    render_summary,
    write_report,
)
from imagetrail.report.heatmap import time_ticks
from imagetrail.service.demo import build_demo_ledger
from imagetrail.service.query import Query, QueryContext, Window
from imagetrail.settings import load
from imagetrail.text import printable

STALE_AFTER = "10d"
DAY = 86400.0


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report-demo") / "demo.db"
    # No simulator signals: these tests are about a ledger without Prometheus (the demo's
    # own verdicts: tests/test_demo_impact.py).
    ledger, _ = build_demo_ledger(path, signals=False)
    ledger.close()
    return path


@pytest.fixture(scope="module")
def hostile_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report-hostile") / "hostile.db"
    hostile.build_hostile_ledger(path, end=time.time() // 60 * 60).close()
    return path


def context(ledger: Path, **extra: str) -> QueryContext:
    return QueryContext(load({"ledger": str(ledger), **extra}, environ={}))


class Parsed(HTMLParser):
    """Every tag with its attributes, and the text, of an HTML document."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def assert_inert(html: str, images: tuple[str, ...] = ("data:image/png;base64,", "cid:")) -> Parsed:
    """No script, no event handler, no javascript: URL, no image but ``images``."""
    doc = Parsed(html)
    names = {tag for tag, _ in doc.tags}
    assert not names & {"script", "iframe", "object", "embed", "form", "link", "style"}, names
    for tag, attrs in doc.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src"):
                assert value is not None
                assert not value.strip().lower().startswith("javascript:"), (tag, value)
                if tag == "img":
                    assert value.startswith(images), value
    return doc


# ------------------------------------------------------------- numbers on the demo fleet
def expected_numbers(ledger_path: Path, start: float, stale_after: float) -> dict[str, object]:
    """The report's numbers from the ledger's own changes and spans, by plain loops."""
    ledger = Ledger.open(ledger_path, create=False)
    try:
        changes = ledger.changes(start=start)
        all_changes = ledger.changes(start=0)
        spans = ledger.spans()
        end = ledger.synced_until()
    finally:
        ledger.close()
    assert end is not None
    tolerance = 60.0  # two scrape intervals: a running span's last sample is this close
    running = [s for s in spans if s.first_seen <= end and s.last_seen >= end - tolerance]
    stale = set()
    for s in running:
        key = (s.cluster, s.namespace, s.workload_kind, s.workload, s.container)
        # Since when this container runs this version: its latest change to it, else the
        # first time the container ran it at all.
        arrivals = [
            c.started
            for c in all_changes
            if (c.cluster, c.namespace, c.workload_kind, c.workload, c.container) == key
            and (c.to_image, c.to_digest) == (s.image, s.digest)
        ]
        first = min(
            t.first_seen
            for t in spans
            if (t.cluster, t.namespace, t.workload_kind, t.workload, t.container) == key
            and t.version == s.version
        )
        since = max(arrivals) if arrivals else first
        if end - since > stale_after:
            stale.add((*key, s.image))
    floating = set()
    for s in running:
        last = s.image.rsplit("/", 1)[-1].split("@", 1)[0]
        tag = last.split(":", 1)[1] if ":" in last else None
        if tag in (None, "latest"):
            floating.add(s.image)
    scopes = {(c.cluster, c.namespace) for c in changes} | {
        (s.cluster, s.namespace) for s in running
    }
    return {
        "changes": len(changes),
        "workloads_changed": len({(c.cluster, c.namespace, c.workload) for c in changes}),
        "failed": sum(1 for c in changes if c.state in ("failed", "stuck")),
        "rollbacks": sum(
            1
            for c in changes
            if c.kind == ChangeKind.ROLLBACK and c.state not in ("failed", "stuck")
        ),
        "downgrades": sum(
            1
            for c in changes
            if c.kind == ChangeKind.DOWNGRADE and c.state not in ("failed", "stuck")
        ),
        "stale": len(stale),
        "floating": len(floating),
        "scopes": sorted(scopes),
        "end": end,
    }


def test_demo_report_numbers_match_the_ledger(demo_ledger: Path) -> None:
    qc = context(demo_ledger, report_stale_after=STALE_AFTER, report_since="7d")
    now = time.time()
    report = make_report(qc, Query(), now=now)
    want = expected_numbers(demo_ledger, report.start, 10 * DAY)
    s = report.summary
    assert report.start == pytest.approx(now - 7 * DAY)
    assert report.end == want["end"]
    assert s.changes == want["changes"]
    assert s.changes > 20
    assert s.workloads_changed == want["workloads_changed"]
    assert s.rollbacks == want["rollbacks"]
    assert s.stale_images == want["stale"]
    assert s.stale_images > 0
    assert s.floating_images == want["floating"]
    assert s.floating_images > 0
    assert s.regressions is None
    assert "no Prometheus" in report.impact_note
    assert [(n.cluster, n.namespace) for n in report.namespaces] == want["scopes"]
    assert sum(n.changes_total for n in report.namespaces) == s.changes
    # Notable first: failed and stuck rollouts, rollbacks, then downgrades, then the rest.
    failed = int(str(want["failed"]))
    rollbacks, downgrades = int(str(want["rollbacks"])), int(str(want["downgrades"]))
    assert rollbacks + downgrades > 0
    reasons = [n.reason for n in report.notable]
    assert reasons[: failed + rollbacks + downgrades] == (
        ["failed"] * failed + ["rollback"] * rollbacks + ["downgrade"] * downgrades
    )
    assert report.notable_total == s.changes
    assert report.heatmap_png is not None
    assert report.heatmap_png.startswith(b"\x89PNG")


def test_impacts_become_verdicts_and_regressions_are_notable(demo_ledger: Path) -> None:
    qc = context(demo_ledger)
    now = time.time()
    changes = qc.changes(Query(window=Window(start=now - 7 * DAY)))
    upgrades = [c for c in changes if c.kind == ChangeKind.UPGRADE]
    bad, good = upgrades[0], upgrades[1]

    def impact(change: Change, verdict: str) -> Impact:
        return Impact(change, verdict, "test", (change.started - 3600, change.started), None, ())  # type: ignore[arg-type]

    report = build_report(
        qc, Query(), impacts=[impact(bad, "regression"), impact(good, "no-change")], now=now
    )
    assert report.summary.regressions == 1
    first_regression = next(n for n in report.notable if n.reason == "regression")
    assert first_regression.change == bad
    assert first_regression.verdict == "regression"
    # Regressions come before downgrades and plain changes.
    order = [n.reason for n in report.notable]
    assert order.index("regression") < min(
        (i for i, r in enumerate(order) if r in ("downgrade", "other")), default=len(order)
    )
    verdicts = {n.change: n.verdict for n in report.notable}
    assert verdicts.get(good, "no-change") == "no-change"
    html = render_html(report, inline_images=True)
    assert "regression" in Parsed(html).text
    assert "1 regressions" in render_summary(report)


def test_without_prometheus_the_report_says_so(demo_ledger: Path) -> None:
    report = make_report(context(demo_ledger), Query())
    assert report.summary.regressions is None
    for text in (render_markdown(report), render_summary(report)):
        assert "n/a regressions" in text or "| Regressions | n/a |" in text
        assert "impact not available: no Prometheus configured" in text.replace("\\", "")
    assert (
        "impact not available: no Prometheus configured"
        in Parsed(render_html(report, inline_images=True)).text
    )


def test_failing_prometheus_gives_a_report_that_says_why(demo_ledger: Path) -> None:
    # A Prometheus URL nothing listens on: impact fails, the report does not.
    from servers import free_port

    qc = context(demo_ledger, prometheus_url=f"http://127.0.0.1:{free_port()}", retries="0")
    report = make_report(qc, Query())
    assert report.summary.regressions is None
    assert report.impact_note.startswith("impact not available")
    assert report.summary.changes > 0


# ------------------------------------------------------------------------- hostile text
def test_html_is_inert_and_shows_hostile_names_as_text(hostile_ledger: Path) -> None:
    report = make_report(context(hostile_ledger), Query(window=Window.from_flags(since="2d")))
    assert report.summary.changes == 1
    for inline in (True, False):
        html = render_html(report, inline_images=inline)
        doc = assert_inert(html)
        assert hostile.PAYLOAD not in html
        assert "<script>alert(2)" not in html
        text = doc.text
        for value in (hostile.IMAGE_NEW, hostile.WORKLOAD_ID, hostile.CONTAINER):
            assert printable(value) in text, value
        imgs = [a for t, a in doc.tags if t == "img"]
        assert len(imgs) == 1
        assert (imgs[0]["src"] or "").startswith("data:" if inline else "cid:")


def test_markdown_escapes_hostile_names(hostile_ledger: Path) -> None:
    report = make_report(context(hostile_ledger), Query(window=Window.from_flags(since="2d")))
    text = render_markdown(report, heatmap="r.heatmap.png")
    assert hostile.PAYLOAD not in text
    # Rendered by a CommonMark renderer that passes raw HTML through: still inert.
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    doc = assert_inert(html, images=("r.heatmap.png",))
    rendered = doc.text
    for value in (hostile.IMAGE_NEW, hostile.WORKLOAD_ID, hostile.CONTAINER):
        assert printable(value) in rendered, value
    # Tables keep their shape: a pipe in a name must not add a cell.
    rows = [line for line in text.splitlines() if line.startswith("| 20")]
    assert rows
    assert all(line.count(" | ") == 5 for line in rows)
    summary = MarkdownIt("commonmark", {"html": True}).render(render_summary(report))
    assert_inert(summary)


@given(st.text(max_size=60))
def test_md_renders_back_to_the_printable_text(value: str) -> None:
    out = md(value)
    assert "\n" not in out
    assert "\r" not in out
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(f"x {out} x")
    doc = Parsed(html)
    assert [t for t, _ in doc.tags] == ["p"]
    expected = " ".join(f"x {printable(value)} x".split())
    assert " ".join(doc.text.split()) == expected


@given(st.floats(0, 4e9), st.floats(60, 90 * DAY))
def test_time_ticks_are_few_aligned_and_inside(start: float, length: float) -> None:
    ticks, fmt = time_ticks(start, start + length)
    assert len(ticks) <= 8
    assert all(start <= t <= start + length for t in ticks)
    assert all(t % 3600 == 0 for t in ticks)
    assert fmt in ("%b %d", "%b %d %H:%M")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mmost://127.0.0.1:8065/s3cr3ttoken", "mmost://127.0.0.1:8065"),
        ("json://localhost/path?secret=1", "json://localhost"),
        ("slack://TokenA/TokenB/TokenC/#chan", "slack://…"),
        ("tgram://123456789:AAbbCCdd/12345", "tgram://…"),
        ("discord://user:pass@host.example/x", "discord://…"),
        ("no scheme here", "a URL without a scheme"),
    ],
)
def test_redacted_urls_hold_no_token(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# ---------------------------------------------------------------------- files and CLI
def test_write_report_files(demo_ledger: Path, tmp_path: Path) -> None:
    report = make_report(context(demo_ledger), Query())
    md_files = write_report(report, tmp_path / "weekly.md", "markdown")
    assert md_files == [tmp_path / "weekly.md", tmp_path / "weekly.heatmap.png"]
    assert (tmp_path / "weekly.heatmap.png").read_bytes() == report.heatmap_png
    assert "](<weekly.heatmap.png>)" in (tmp_path / "weekly.md").read_text()
    html_files = write_report(report, tmp_path / "weekly.html", "html")
    assert html_files == [tmp_path / "weekly.html"]
    assert_inert((tmp_path / "weekly.html").read_text())
    # Atomic: no temporary file left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "weekly.heatmap.png",
        "weekly.html",
        "weekly.md",
    ]


def test_cli_report_to_a_file_and_stdout(demo_ledger: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    run = invoke(["report", "--ledger", str(demo_ledger), "--since", "3d", "-o", str(out)])
    assert run.code == 0, run.err
    assert f"wrote {out}" in run.err
    assert "no Prometheus configured" in run.err
    assert run.out == ""
    assert_inert(out.read_text())
    run = invoke(["report", "--ledger", str(demo_ledger), "--format", "markdown", "--output", "-"])
    assert run.code == 0, run.err
    assert run.out.startswith("# imagetrail report ")
    assert "## Per namespace" in run.out


def test_cli_report_filters_and_range(demo_ledger: Path) -> None:
    run = invoke(
        [
            "report",
            "--ledger",
            str(demo_ledger),
            "-n",
            "shop",
            "--cluster",
            "prod-eu",
            "--from",
            "6d",
            "--to",
            "1d",
            "-f",
            "markdown",
            "-o",
            "-",
        ]
    )
    assert run.code == 0, run.err
    sections = [line for line in run.out.splitlines() if line.startswith("### ")]
    assert sections == ["### prod\\-eu / shop".replace("\\-", "-")]
    assert "cluster prod-eu; namespaces matching shop" in run.out


def test_cli_report_prints_markdown_to_stdout_by_default(demo_ledger: Path) -> None:
    """Documented as Markdown to stdout; it said 'nothing to deliver' (exit 2) instead."""
    run = invoke(["report", "--ledger", str(demo_ledger), "--since", "3d"])
    assert run.code == 0, run.err
    assert run.out.startswith("# imagetrail report ")
    assert "## Per namespace" in run.out
    assert "<html" not in run.out.lower()
    # --format still decides; a report_format setting of html does not turn stdout into HTML.
    run = invoke(["report", "--ledger", str(demo_ledger), "--since", "3d", "-f", "html"])
    assert run.code == 0, run.err
    assert run.out.lstrip().lower().startswith("<!doctype html>")
    run = invoke(
        ["report", "--ledger", str(demo_ledger), "--since", "3d"],
        {"IMAGETRAIL_REPORT_FORMAT": "html"},
    )
    assert run.out.startswith("# imagetrail report ")


def test_cli_report_errors(demo_ledger: Path, tmp_path: Path) -> None:
    assert_one_error(
        invoke(["report", "--ledger", str(demo_ledger), "-o", "-", "-f", "pdf"]), 2, "--format"
    )
    assert_one_error(
        invoke(["report", "--ledger", str(demo_ledger), "--mail"]), 2, "smtp_host is unset"
    )
    assert_one_error(
        invoke(["report", "--ledger", str(demo_ledger), "--notify"]), 2, "report_notify"
    )
    assert_one_error(
        invoke(["report", "--ledger", str(tmp_path / "none.db"), "-o", "-"]), 4, "ledger"
    )


def test_report_of_an_empty_range(demo_ledger: Path) -> None:
    qc = context(demo_ledger)
    end = time.time() - 40 * DAY  # before the simulated fortnight
    report = build_report(
        qc, Query(window=Window(start=end - DAY, end=end)), impacts=None, now=time.time()
    )
    assert report.summary.changes == 0
    assert report.heatmap_png is None
    assert "No containers ran in this range." in render_markdown(report)
    assert_inert(render_html(report, inline_images=True))


def test_every_report_option_is_documented() -> None:
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "report.md").read_text()
    out = invoke(["report", "--help"]).out
    options = set(re.findall(r"(--[a-z][a-z-]*)", out)) - {"--help"}
    assert {"--output", "--mail", "--notify", "--format"} <= options
    for option in sorted(options):
        assert f"`{option}" in text or f"/{option}" in text, option


# ---------------------------------------------------------------------- failed rollouts
def failed_changes(end: float) -> list[Change]:
    """A failed attempt (25 minutes of ImagePullBackOff, undone) and a stuck one, built as
    change detection makes them, with hostile names and reasons."""
    base = Change(
        hostile.CLUSTER, hostile.NAMESPACE, "Deployment", hostile.WORKLOAD, hostile.CONTAINER,
        hostile.IMAGE_OLD, "sha256:" + "a" * 64, hostile.IMAGE_NEW + "-bad", None,
        ChangeKind.UPGRADE, end - 5 * 3600, None,
    )  # fmt: skip
    failed = replace(
        base, cut_short=CutShort.FAILED, ended=end - 5 * 3600 + 1500,
        reasons=("ErrImagePull", "ImagePullBackOff"), pods=1, pods_ran=0,
    )  # fmt: skip
    stuck = replace(
        base, started=end - 2400, reasons=(f"Bad|{hostile.PAYLOAD}",), pods=3, pods_ran=0
    )
    return [failed, stuck]


def failed_report(ledger: Path) -> tuple[Report, float]:
    ctx = context(ledger)
    with Ledger.open(ledger, create=False) as opened:
        end = opened.synced_until()
    assert end is not None
    query = Query(window=Window(start=end - 2 * DAY, end=end))
    changes = failed_changes(end)
    return build_report(ctx, query, impacts=None, now=end, changes=changes), end


def test_failed_rollouts_are_listed_with_reasons_pods_and_how_long(hostile_ledger: Path) -> None:
    report, _ = failed_report(hostile_ledger)
    assert (report.summary.failed_rollouts, report.summary.stuck_rollouts) == (2, 1)
    assert [c.state for c in report.failed] == ["stuck", "failed"]  # newest first
    assert [i.reason for i in report.notable] == ["failed", "failed"]
    text = render_markdown(report)
    section = text.split("## Failed rollouts (2)")[1].split("## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| 20")]
    assert len(rows) == 2
    assert all(line.count(" | ") == 6 for line in rows)  # a pipe in a reason adds no cell
    assert "| 0 of 3 ran | stuck (40m so far) |" in rows[0]
    assert "| ErrImagePull, ImagePullBackOff | 0 of 1 ran | after 25m |" in rows[1]
    assert "| Failed rollouts | 2 |" in text
    summary = render_summary(report)
    assert "- 2 failed rollouts (1 stuck)" in summary
    assert "(failed " in summary  # the notable lines say how each ended
    assert "(stuck): " in summary
    assert "ErrImagePull, ImagePullBackOff, 0 of 1 ran" in summary


def test_failed_rollouts_in_html_are_inert(hostile_ledger: Path) -> None:
    report, _ = failed_report(hostile_ledger)
    html = render_html(report, inline_images=True)
    assert hostile.PAYLOAD not in html
    doc = assert_inert(html)
    for value in ("0 of 1 ran", "after 25m", "stuck (40m so far)", printable(hostile.IMAGE_NEW)):
        assert value in doc.text, value
    assert f"Bad|{hostile.PAYLOAD}" in doc.text  # shown as text
    md_html = (
        MarkdownIt("commonmark", {"html": True}).enable("table").render(render_markdown(report))
    )
    assert f"Bad|{hostile.PAYLOAD}" in assert_inert(md_html).text
    assert_inert(MarkdownIt("commonmark", {"html": True}).render(render_summary(report)))


def test_a_report_without_failed_rollouts_says_none(hostile_ledger: Path) -> None:
    report = make_report(context(hostile_ledger), Query(window=Window.from_flags(since="2d")))
    assert report.failed == ()
    assert "## Failed rollouts (0)\n\nNone." in render_markdown(report)
    assert "failed rollouts" not in render_summary(report)
