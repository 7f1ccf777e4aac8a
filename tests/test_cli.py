"""The ``imagetrail`` command line, run for real against a demo ledger.

Most tests go through :func:`imagetrail.cli.main` in-process (the console script's entry point,
so error printing is covered too); a few run the installed ``.venv/bin/imagetrail`` to prove the
console script, its exit codes and a traceback-free stderr. Expected answers come from the
simulator's own ground truth, not from imagetrail's analysis.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pytest

from clirun import Run, assert_one_error, invoke
from imagetrail import __version__
from imagetrail import settings as settings_mod
from imagetrail.cli import views
from imagetrail.ledger import Ledger
from imagetrail.model import Change, ChangeKind, CutShort, Span
from imagetrail.service.demo import build_demo_ledger
from imagetrail.sim import Fleet, SimConfig, simulate
from imagetrail.timeutil import format_time
from simdata import change_key

BIN = Path(sys.executable).parent / "imagetrail"
DAY = 86400.0
HOUR = 3600.0

VERSIONS_KEYS = ["image", "digest", "containers", "workloads", "stale", "stale_containers"]
CHANGES_COLUMNS = [
    "cluster",
    "namespace",
    "workload_kind",
    "workload",
    "container",
    "from_image",
    "to_image",
    "kind",
    "started",
    "finished",
    "from_digest",
    "to_digest",
    "state",
    "cut_short",
    "ended",
    "reasons",
    "pods",
    "pods_ran",
    "waited",
]
HISTORY_COLUMNS = ["container", "image", "digest", "first_seen", "last_seen", "containers_max"]
AUDIT_COLUMNS = [
    "cluster",
    "namespace",
    "workload_kind",
    "workload",
    "container",
    "image",
    "digest",
    "first_seen",
    "last_seen",
    "containers_max",
]
WORKLOADS_COLUMNS = [
    "cluster",
    "namespace",
    "workload_kind",
    "workload",
    "container",
    "images",
    "containers",
    "last_change",
    "inferred",
    "stale",
]
WORKLOADS_KEYS = [*WORKLOADS_COLUMNS, "first_seen", "last_seen"]


# -- running the CLI ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Demo:
    path: Path
    end: float
    fleet: Fleet

    def run(self, *args: str, env: Mapping[str, str | None] | None = None) -> Run:
        return invoke(args, {"IMAGETRAIL_LEDGER": str(self.path), **(env or {})})


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    ledger, end = build_demo_ledger(path)
    ledger.close()
    # The same fleet the demo recorded: its ground truth is what the answers must show.
    fleet = simulate(SimConfig(seed=7, start=end - 14 * DAY, days=14))
    assert fleet.end == end
    return Demo(path, end, fleet)


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every command where no stray ./imagetrail.yaml can change the settings."""
    monkeypatch.chdir(tmp_path)


def unix(text: str) -> float:
    """An RFC 3339 UTC time as printed by imagetrail, back to unix seconds."""
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- the console script ------------------------------------------------------------------------
def test_console_script_lists_every_command() -> None:
    done = subprocess.run([BIN, "--help"], capture_output=True, text=True, check=True)
    for command in (
        "sync",
        "versions",
        "heatmap",
        "changes",
        "history",
        "audit",
        "workloads",
        "serve",
        "demo",
        "settings",
    ):
        assert f"  {command} " in done.stdout, command
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == __version__


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["history", "cart"], 2, "matches 3 workloads"),
        (["changes", "--since", "1d", "--from", "2d"], 2, "--since or --from, not both"),
        (["versions", "--format", "xml"], 2, "-o/--output must be table, wide, json or csv"),
    ],
)
def test_console_script_errors_are_one_line(
    demo: Demo, tmp_path: Path, args: list[str], code: int, needle: str
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "COLUMNS": "40"}
    done = subprocess.run(
        [BIN, *args, "--ledger", str(demo.path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    # A narrow terminal must not wrap the error line either.
    line = assert_one_error(Run(done.returncode, done.stdout, done.stderr), code, needle)
    assert line.startswith("error: ")
    assert done.stdout == ""


def test_console_script_not_a_ledger(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a database\n")
    done = subprocess.run(
        [BIN, "versions", "--ledger", str(bogus)], capture_output=True, text=True, cwd=tmp_path
    )
    assert_one_error(Run(done.returncode, done.stdout, done.stderr), 4, "not an imagetrail ledger")
    assert bogus.read_text() == "not a database\n"


def test_usage_errors_exit_2_without_traceback(demo: Demo) -> None:
    run = demo.run("versions", "--no-such-flag")
    assert run.code == 2
    assert "No such option" in run.err
    assert "Traceback" not in run.err


# -- every query command x every format --------------------------------------------------------
QUERIES: dict[str, list[str]] = {
    "versions": ["versions"],
    "changes": ["changes", "--since", "14d"],
    "heatmap": ["heatmap", "--since", "1d", "--to", "{end}", "--step", "1h"],
    # A fixed end: history over a range is clipped to it (like audit).
    "history": ["history", "prod-eu/shop/Deployment/cart", "--since", "14d", "--to", "{end}"],
    "audit": ["audit", "--since", "2h", "--to", "{end}"],
    "workloads": ["workloads"],
}
CSV_HEADERS: dict[str, list[str]] = {
    "versions": VERSIONS_KEYS,
    "changes": CHANGES_COLUMNS,
    "heatmap": ["time", "image", "containers"],
    "history": HISTORY_COLUMNS,
    "audit": AUDIT_COLUMNS,
    "workloads": WORKLOADS_COLUMNS,
}
TABLE_TITLES: dict[str, str] = {
    "versions": "versions at ",
    "changes": "changes",
    "heatmap": "CONTAINERS OVER TIME",
    "history": "history of prod-eu/shop/Deployment/cart",
    "audit": "audit",
    "workloads": "workloads",
}


@pytest.mark.parametrize("command", list(QUERIES))
def test_every_command_in_every_format(demo: Demo, command: str) -> None:
    # A fixed end: two runs a few ms apart must show the same window.
    args = [a.replace("{end}", str(int(demo.end) - 7)) for a in QUERIES[command]]
    as_json = demo.run(*args, "--format", "json").json()
    as_csv = demo.run(*args, "--format", "csv").csv()
    table = demo.run(*args)
    assert table.code == 0, table.err
    assert TABLE_TITLES[command] in table.out
    assert as_csv, "the demo ledger has an answer for every command"
    assert list(as_csv[0]) == CSV_HEADERS[command]
    if command == "heatmap":
        assert isinstance(as_json, dict)
        cells = sum(1 for row in as_json["counts"] for n in row if n)
        assert len(as_csv) == cells
        return
    assert isinstance(as_json, list)
    assert len(as_csv) == len(as_json)
    # CSV and JSON carry the same rows in the same order.
    for row, obj in zip(as_csv, as_json, strict=True):
        for column, cell in row.items():
            value = obj[column]
            if isinstance(value, list):
                value = " ".join(value)
            assert cell == ("" if value is None else str(value)), (column, cell, value)


def test_json_times_are_rfc3339_utc(demo: Demo) -> None:
    rows = demo.run("changes", "--since", "14d", "-f", "json").json()
    assert isinstance(rows, list)
    for row in rows:
        for name in ("started", "finished"):
            if row[name] is not None:
                assert row[name].endswith("Z")
                assert demo.end - 14 * DAY <= unix(row[name]) <= demo.end


# -- answers against the simulator's ground truth ----------------------------------------------
def test_versions_match_the_ground_truth(demo: Demo) -> None:
    at = demo.end - 5 * HOUR - 17 * 60
    rows = demo.run("versions", "--at", format_time(at), "-f", "json").json()
    assert isinstance(rows, list)
    assert [set(r) for r in rows] == [set(VERSIONS_KEYS)] * len(rows)
    truth: Counter[tuple[str, str | None]] = Counter()
    owners: dict[tuple[str, str | None], set[str]] = {}
    for span in demo.fleet.spans():
        if span.covers(at):
            truth[span.version] += 1
            owners.setdefault(span.version, set()).add(span.workload_ref.id)
    assert {(r["image"], r["digest"]): r["containers"] for r in rows} == dict(truth)
    assert {(r["image"], r["digest"]): set(r["workloads"]) for r in rows} == owners
    counts = [r["containers"] for r in rows]
    assert counts == sorted(counts, reverse=True), "most containers first"


def test_changes_match_the_ground_truth(demo: Demo) -> None:
    rows = demo.run("changes", "--since", "14d", "-f", "json").json()
    assert isinstance(rows, list)
    assert [set(r) for r in rows] == [set(CHANGES_COLUMNS)] * len(rows)
    lo, hi = demo.end - 14 * DAY + HOUR, demo.end - 2 * HOUR
    expected = {change_key(c): c for c in demo.fleet.expected_changes if lo <= c.started <= hi}
    found = {change_key(r): r for r in rows if lo <= unix(r["started"]) <= hi}
    assert set(found) == set(expected)
    for key, truth in expected.items():
        assert abs(unix(found[key]["started"]) - truth.started) <= 30, key
        if truth.finished is None:
            assert found[key]["finished"] is None, key
        else:
            assert abs(unix(found[key]["finished"]) - truth.finished) <= 30, key
        assert found[key]["cut_short"] == truth.cut_short, key
        if truth.ended is not None:
            assert abs(unix(found[key]["ended"]) - truth.ended) <= 30, key
        # Failed and stuck rollouts: why the new pods waited and how they fared.
        assert found[key]["state"] == truth.state, key
        assert (found[key]["reasons"], found[key]["pods"], found[key]["pods_ran"]) == (
            list(truth.reasons), truth.pods, truth.pods_ran
        ), key  # fmt: skip
        if truth.waited is None:
            assert found[key]["waited"] is None, key
        else:
            assert abs(found[key]["waited"] - truth.waited) <= 30, key
    assert {"failed", "stuck"} <= {c.state for c in expected.values()}


def test_no_change_stays_open_once_the_next_one_started(demo: Demo) -> None:
    rows = demo.run("changes", "--since", "14d", "-f", "json").json()
    assert isinstance(rows, list)
    by_container: dict[tuple[object, ...], list[dict[str, object]]] = {}
    for r in rows:
        key = tuple(
            r[f] for f in ("cluster", "namespace", "workload_kind", "workload", "container")
        )
        by_container.setdefault(key, []).append(r)
    followed = 0
    for changes in by_container.values():
        for before, after in itertools.pairwise(changes):
            followed += 1
            assert before["state"] != "in-progress", (before, after)
            if before["finished"] is None:
                # (an attempt that failed is over too; route-planner's rollback overtook it)
                assert before["state"] in ("aborted", "superseded", "failed")
                assert before["ended"] == after["started"]
    assert followed > 10


def test_the_cut_short_cart_upgrade_reads_aborted(demo: Demo) -> None:
    rows = demo.run("changes", "--since", "14d", "-w", "prod-eu/shop/Deployment/cart", "-f", "json")
    cart = [r for r in rows.json() if r["container"] == "cart"]
    [i] = [i for i, r in enumerate(cart) if r["to_image"] == "ghcr.io/acme/cart:2.5.0"]
    upgrade, rollback = cart[i : i + 2]
    assert (upgrade["kind"], upgrade["to_image"]) == ("upgrade", "ghcr.io/acme/cart:2.5.0")
    assert (upgrade["state"], upgrade["finished"]) == ("aborted", None)
    assert upgrade["ended"] == rollback["started"]
    assert rollback["kind"] == "rollback"
    assert rollback["state"] == "finished"
    table = demo.run("changes", "--since", "14d", "-w", "prod-eu/shop/Deployment/cart")
    assert "aborted" in table.out
    assert "in progress" not in table.out


def test_the_state_and_wide_cells_say_how_a_failed_or_stuck_rollout_stands() -> None:
    """The table's STATE is the state alone; -o wide has when it finished and why."""
    t0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
    tried = Change(
        "kind", "scraper", "Deployment", "e2e-hpa", "hpa", "registry.k8s.io/hpa-example:v1",
        None, "registry.k8s.io/hpa-example:v9.9.9", None, ChangeKind.UPGRADE, t0, None,
        reasons=("ImagePullBackOff",), pods=1, pods_ran=0,
    )  # fmt: skip
    failed = replace(tried, cut_short=CutShort.FAILED, ended=t0 + 1500)
    row = views.change_row(failed)
    assert (row["state"], row["finished"]) == ("failed", "2027-01-15T08:25:00Z")
    assert row["reasons"] == "ImagePullBackOff (0/1 pods ran)"
    row = views.change_row(tried)
    assert (row["state"], row["finished"]) == ("stuck", None)
    assert row["reasons"] == "ImagePullBackOff (0/1 pods ran)"
    waited = replace(tried, finished=t0 + 720, pods_ran=1, waited=600.0)
    row = views.change_row(waited)
    assert (row["state"], row["finished"]) == ("done", "2027-01-15T08:12:00Z")
    assert row["reasons"] == "ImagePullBackOff (1/1 pods ran), waited 10m"
    assert views.rollout_note(replace(waited, waited=None, reasons=())) is None


def test_changes_on_a_cadvisor_ledger_say_failed_rollouts_need_ksm(
    demo: Demo, tmp_path: Path
) -> None:
    path = tmp_path / "cadvisor.db"
    end = time.time() // 60 * 60
    spans = [
        Span("c1", "shop", "Deployment", "web", f"web-{i}", "app", image, None, a, b,
             signal="cadvisor")
        for i, (image, a, b) in enumerate(
            [("ghcr.io/acme/web:1.0", end - 5 * HOUR, end - HOUR),
             ("ghcr.io/acme/web:1.1", end - HOUR - 60, end)]
        )
    ]  # fmt: skip
    with Ledger.open(path) as ledger:
        ledger.merge_spans(
            spans, sync_key="cadvisor|http://prom|", synced_from=end - 6 * HOUR, synced_until=end
        )
    table = invoke(["changes", "--since", "1d", "--ledger", str(path)])
    assert table.out.rstrip().endswith(views.CADVISOR_NOTE)
    assert views.CADVISOR_NOTE not in invoke(["changes", "--since", "1d", "--ledger", str(path),
                                            "-f", "json"]).out  # fmt: skip
    # A kube-state-metrics ledger can see failed rollouts: no note.
    assert views.CADVISOR_NOTE not in demo.run("changes", "--since", "14d").out


def test_the_cart_rollback_is_a_rollback(demo: Demo) -> None:
    rows = demo.run("changes", "--since", "14d", "--kind", "rollback", "-f", "json").json()
    assert isinstance(rows, list)
    truth = [c for c in demo.fleet.expected_changes if c.kind == "rollback"]
    assert [change_key(r) for r in rows] == [change_key(c) for c in truth]
    # Three scripted rollbacks: shop/cart (a failed rollout), orders/orders-api (a bad one) and
    # logistics/route-planner (a crash-looping release; the undo of a missing tag changes no
    # running version, so it is no change).
    assert sorted((r["namespace"], r["workload"]) for r in rows) == [
        ("logistics", "route-planner"),
        ("orders", "orders-api"),
        ("shop", "cart"),
    ]
    [rollback] = [r for r in rows if r["workload"] == "cart"]
    assert rollback["cluster"] == "prod-eu"
    assert rollback["from_image"] == "ghcr.io/acme/cart:2.5.0"
    assert rollback["to_image"] == "ghcr.io/acme/cart:2.4.0"


def test_kind_filter_is_repeatable(demo: Demo) -> None:
    rows = demo.run(
        "changes", "--since", "14d", "--kind", "added", "--kind", "removed", "-f", "json"
    ).json()
    assert isinstance(rows, list)
    assert sorted(r["kind"] for r in rows) == ["added", "removed"]
    bad = demo.run("changes", "--since", "14d", "--kind", "bogus")
    assert_one_error(bad, 2, "unknown change kind 'bogus'")


def test_history_follows_the_workload_story(demo: Demo) -> None:
    rows = demo.run("history", "shop/cart", "--cluster", "prod-eu", "-f", "json").json()
    assert isinstance(rows, list)
    assert [set(r) for r in rows] == [set(HISTORY_COLUMNS)] * len(rows)
    cart = [r for r in rows if r["container"] == "cart"]
    # The image sequence is the chain of the ground-truth changes of that container.
    truth = sorted(
        (
            c
            for c in demo.fleet.expected_changes
            if (c.cluster, c.namespace, c.workload, c.container)
            == ("prod-eu", "shop", "cart", "cart")
        ),
        key=lambda c: c.started,
    )
    chain = [truth[0].from_image] + [c.to_image for c in truth]
    assert [r["image"] for r in cart] == chain
    assert [r["first_seen"] for r in cart] == sorted(r["first_seen"] for r in cart)
    for row in rows:
        assert unix(row["first_seen"]) <= unix(row["last_seen"])
        assert row["containers_max"] >= 1


def test_history_over_a_range_shows_the_periods_inside_it(demo: Demo) -> None:
    [upgrade] = [
        c
        for c in demo.fleet.expected_changes
        if (c.cluster, c.workload, c.container, c.to_image)
        == ("prod-eu", "cart", "cart", "ghcr.io/acme/cart:2.5.0")
    ]
    lo, hi = upgrade.started - 2 * HOUR, upgrade.started + 3 * HOUR
    window = ("--from", format_time(lo), "--to", format_time(hi))
    rows = demo.run("history", "prod-eu/shop/Deployment/cart", *window, "-f", "json").json()
    assert {r["container"] for r in rows} == {"cart", "envoy"}
    for row in rows:
        assert lo <= unix(row["first_seen"]) <= unix(row["last_seen"]) <= hi, row
    # The sidecar ran throughout: one period, exactly the window.
    [envoy] = [r for r in rows if r["container"] == "envoy"]
    assert (unix(envoy["first_seen"]), unix(envoy["last_seen"])) == (lo, hi)


def test_heatmap_shape_and_counts(demo: Demo) -> None:
    hm = demo.run("heatmap", "--since", "1d", "--step", "1h", "-f", "json").json()
    assert isinstance(hm, dict)
    assert set(hm) == {"times", "images", "counts"}
    times = [unix(t) for t in hm["times"]]
    assert all(math.isclose(b - a, HOUR) for a, b in itertools.pairwise(times))
    assert 24 <= len(times) <= 25
    assert len(hm["counts"]) == len(hm["images"]) == len(set(hm["images"]))
    assert all(len(row) == len(times) for row in hm["counts"])
    # Images running through the whole day show in every column.
    images = {s.image for s in demo.fleet.spans() if s.first_seen <= times[0] - HOUR}
    steady = [i for i, image in enumerate(hm["images"]) if image in images]
    assert steady
    assert any(all(n > 0 for n in hm["counts"][i]) for i in steady)


def test_audit_stays_inside_the_window(demo: Demo) -> None:
    rows = demo.run("audit", "--from", format_time(demo.end - 3 * HOUR), "-f", "json").json()
    assert isinstance(rows, list)
    assert [set(r) for r in rows] == [set(AUDIT_COLUMNS)] * len(rows)
    for row in rows:
        assert demo.end - 3 * HOUR <= unix(row["first_seen"]) <= unix(row["last_seen"])
    wanted = {
        (s.cluster, s.namespace, s.workload, s.container, s.image)
        for s in demo.fleet.spans()
        if s.last_seen >= demo.end - 3 * HOUR
    }
    got = {(r["cluster"], r["namespace"], r["workload"], r["container"], r["image"]) for r in rows}
    assert got == wanted


def test_workloads_json(demo: Demo) -> None:
    at = demo.end - 2 * HOUR
    rows = demo.run("workloads", "--at", format_time(at), "-f", "json").json()
    assert isinstance(rows, list)
    assert [set(r) for r in rows] == [set(WORKLOADS_KEYS)] * len(rows)
    running = {
        (s.cluster, s.namespace, s.workload_kind, s.workload, s.container)
        for s in demo.fleet.spans()
        if s.covers(at)
    }
    got = {
        (r["cluster"], r["namespace"], r["workload_kind"], r["workload"], r["container"])
        for r in rows
        if r["containers"]
    }
    assert got == running


# -- filters -----------------------------------------------------------------------------------
def test_cluster_filter(demo: Demo) -> None:
    rows = demo.run("changes", "--since", "14d", "--cluster", "staging", "-f", "json").json()
    assert isinstance(rows, list)
    assert rows
    assert {r["cluster"] for r in rows} == {"staging"}
    # A cluster the ledger does not know is an error, not an empty answer (tests/test_names.py).
    assert_one_error(demo.run("versions", "--cluster", "nowhere"), 2, "no cluster 'nowhere'")


@pytest.mark.parametrize(
    ("regex", "namespaces"),
    [
        ("shop", {"shop"}),
        ("kube-.*", {"kube-system"}),
        ("sho?", set()),  # matched in full, not as a substring ("sh" alone: an unknown name)
        ("shop|data", {"shop", "data"}),
    ],
)
def test_namespace_regex_matches_fully(demo: Demo, regex: str, namespaces: set[str]) -> None:
    rows = demo.run("workloads", "--namespace", regex, "-f", "json").json()
    assert isinstance(rows, list)
    assert {r["namespace"] for r in rows} == namespaces


@pytest.mark.parametrize(
    "pattern",
    [
        "cart",
        "Deployment/cart",
        "deployment/cart",
        "shop/cart",
        "shop/Deployment/cart",
        "prod-eu/shop/Deployment/cart",
    ],
)
def test_workload_forms(demo: Demo, pattern: str) -> None:
    rows = demo.run("changes", "--since", "14d", "--workload", pattern, "-f", "json").json()
    assert isinstance(rows, list)
    assert rows
    assert {(r["namespace"], r["workload_kind"], r["workload"]) for r in rows} == {
        ("shop", "Deployment", "cart")
    }
    clusters = {r["cluster"] for r in rows}
    assert clusters == ({"prod-eu"} if pattern.startswith("prod-eu/") else set(clusters))
    if not pattern.startswith("prod-eu/"):
        assert len(clusters) == 3
    no_job = demo.run("changes", "--since", "14d", "-w", "Job/cart")
    assert_one_error(no_job, 2, "no workload matches 'Job/cart'")


def test_time_forms_are_equivalent(demo: Demo) -> None:
    a, b = demo.end - 9 * DAY, demo.end - 5 * DAY
    by_rfc = demo.run("changes", "--from", format_time(a), "--to", format_time(b), "-f", "json")
    by_unix = demo.run("changes", "--from", str(int(a)), "--to", str(int(b)), "-f", "json")
    assert by_rfc.json() == by_unix.json()
    rows = by_rfc.json()
    assert isinstance(rows, list)
    assert rows
    # A change is listed when its rollout overlaps the window; an unfinished one lasts on.
    for r in rows:
        started = unix(r["started"])
        last = started if r["finished"] is None else max(started, unix(r["finished"]))
        assert started <= b
        assert r["finished"] is None or last >= a
    # Relative forms: "--from 9d" is nine days ago, as is "--since 9d".
    relative = demo.run("changes", "--from", "9d", "-f", "json").json()
    since = demo.run("changes", "--since", "9d", "-f", "json").json()
    assert relative == since
    assert isinstance(relative, list)
    assert {change_key(r) for r in rows} <= {change_key(r) for r in relative}


def test_at_forms_are_equivalent(demo: Demo) -> None:
    at = demo.end - 2 * DAY
    rfc = demo.run("versions", "--at", format_time(at), "-f", "json").json()
    assert rfc == demo.run("versions", "--at", str(int(at)), "-f", "json").json()
    ago = math.ceil((time.time() - at) / 60)
    rel = demo.run("versions", "--at", f"now-{ago}m", "-f", "json").json()
    assert isinstance(rel, list)
    assert rel


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["changes", "--since", "2d", "--from", "3d"], "give --since or --from, not both"),
        (["audit", "--from", "1d", "--to", "2d"], "the range is empty"),
        (["heatmap", "--since", "1d", "--step", "0"], "--step must be a positive duration"),
        (["heatmap", "--since", "-1d"], "cannot be negative"),
        (["versions", "--at", "yesterday"], "invalid time 'yesterday'"),
        (["versions", "--source", "carrier-pigeon"], "--source must be ledger or prometheus"),
        (["audit", "--from", "2026-13-45T00:00:00Z"], "2026-13-45"),
    ],
)
def test_bad_filters_are_one_clear_error(demo: Demo, args: list[str], needle: str) -> None:
    assert_one_error(demo.run(*args), 2, needle)


def test_heatmap_step_controls_columns(demo: Demo) -> None:
    to = str(int(demo.end))  # the data ends at demo.end; later columns would be cut off
    hm = demo.run("heatmap", "--since", "6h", "--to", to, "--step", "30m", "-f", "json").json()
    assert isinstance(hm, dict)
    assert 12 <= len(hm["times"]) <= 13


# -- settings precedence -----------------------------------------------------------------------
def test_ledger_setting_precedence(demo: Demo, tmp_path: Path) -> None:
    """flag > IMAGETRAIL_LEDGER > imagetrail.yaml > default, seen through which file is read."""
    missing = {name: tmp_path / f"{name}.db" for name in ("flag", "env", "file")}
    config = tmp_path / "imagetrail.yaml"

    def versions(flag: Path | None, env: Path | None, file: Path | None) -> Run:
        config.unlink(missing_ok=True)
        if file is not None:
            config.write_text(f"ledger: {file}\n")
        args = ["versions", "-f", "json"] + ([] if flag is None else ["--ledger", str(flag)])
        return invoke(args, {"IMAGETRAIL_LEDGER": None if env is None else str(env)})

    assert versions(demo.path, missing["env"], missing["file"]).code == 0
    assert_one_error(versions(missing["flag"], demo.path, demo.path), 4, str(missing["flag"]))
    assert versions(None, demo.path, missing["file"]).code == 0
    assert_one_error(versions(None, missing["env"], demo.path), 4, str(missing["env"]))
    assert versions(None, None, demo.path).code == 0
    assert_one_error(versions(None, None, missing["file"]), 4, str(missing["file"]))
    for path in missing.values():
        assert not path.exists(), "a query must not create a ledger"


def _settings_table(run: Run) -> dict[str, tuple[str, str]]:
    assert run.code == 0, run.err
    out = {}
    for line in run.out.splitlines():
        # kubectl-style: columns are two or more spaces apart.
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 4:
            out[cells[0]] = (cells[1], cells[2])
    return out


def test_settings_command_shows_origins(tmp_path: Path) -> None:
    (tmp_path / "imagetrail.yaml").write_text(
        "prometheus_url: http://file:9090\nchunk: 6h\ntenant: from-file\n"
    )
    run = invoke(
        ["settings"],
        {"IMAGETRAIL_PROMETHEUS_URL": "http://env:9090", "IMAGETRAIL_BEARER_TOKEN": "s3cret"},
    )
    table = _settings_table(run)
    assert table["prometheus_url"] == ("http://env:9090", "IMAGETRAIL_PROMETHEUS_URL")
    assert table["chunk"] == ("6h", "imagetrail.yaml")
    assert table["tenant"] == ("from-file", "imagetrail.yaml")
    assert table["signal"] == ("auto", "default")
    assert table["bearer_token"] == ("***", "IMAGETRAIL_BEARER_TOKEN")
    assert "s3cret" not in run.out


def test_config_flag_and_env(tmp_path: Path) -> None:
    (tmp_path / "imagetrail.yaml").write_text("tenant: cwd\n")
    other = tmp_path / "other.yaml"
    other.write_text("tenant: other\n")
    third = tmp_path / "third.yaml"
    third.write_text("tenant: third\n")
    by_env = _settings_table(invoke(["settings"], {"IMAGETRAIL_CONFIG": str(other)}))
    assert by_env["tenant"] == ("other", str(other))
    by_flag = _settings_table(
        invoke(["--config", str(third), "settings"], {"IMAGETRAIL_CONFIG": str(other)})
    )
    assert by_flag["tenant"] == ("third", str(third))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("nonsense: 1\n", "unknown setting 'nonsense'"),
        ("chunk: soon\n", "chunk (from imagetrail.yaml)"),
        ("- a\n", "must be a mapping"),
    ],
)
def test_bad_config_file_is_one_error(
    demo: Demo, tmp_path: Path, content: str, needle: str
) -> None:
    (tmp_path / "imagetrail.yaml").write_text(content)
    assert_one_error(demo.run("versions"), 2, needle)


def test_bad_env_value_is_one_error(demo: Demo) -> None:
    run = demo.run("versions", env={"IMAGETRAIL_SCRAPE_INTERVAL": "fast"})
    assert_one_error(run, 2, "scrape_interval (from IMAGETRAIL_SCRAPE_INTERVAL)")


def test_missing_config_file_is_one_error(demo: Demo, tmp_path: Path) -> None:
    run = demo.run("--config", str(tmp_path / "nope.yaml"), "versions")
    assert_one_error(run, 2, "does not exist")


# -- sync: killed mid-run, then resumed --------------------------------------------------------
def _synced_until(path: Path) -> float | None:
    """The sync watermark, read the way another process would see it (read-only)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT max(synced_until) FROM sync_state").fetchone()
    except sqlite3.OperationalError:  # not created yet, or busy
        return None
    return None if row is None or row[0] is None else float(row[0])


def _history(path: Path) -> tuple[list[Span], list[Change]]:
    with Ledger.open(path, create=False) as ledger:
        return sorted(ledger.spans(), key=repr), ledger.changes(start=0)


@pytest.mark.slow
def test_sync_killed_mid_run_resumes_to_the_same_ledger(
    sim_prometheus: tuple[str, float, float], tmp_path: Path
) -> None:
    url, start, end = sim_prometheus
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "IMAGETRAIL_CONCURRENCY": "1",
    }

    def sync_args(ledger: Path) -> list[str]:
        return [
            *(str(BIN), "sync", "--prometheus", url, "--since", str(start)),
            *("--until", str(end), "--chunk", "6h", "--ledger", str(ledger)),
        ]

    clean = tmp_path / "clean.db"
    done = subprocess.run(sync_args(clean), capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "synced ksm through" in done.stderr

    killed = tmp_path / "killed.db"
    proc = subprocess.Popen(
        sync_args(killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 60
        mark = None
        while time.monotonic() < deadline and proc.poll() is None:
            mark = _synced_until(killed)
            if mark is not None:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "sync finished before the test could kill it"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    mark = _synced_until(killed)
    assert mark is not None
    assert start < mark < end, "killed after the first chunk committed, before the last"

    again = subprocess.run(sync_args(killed), capture_output=True, text=True, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    resumed_spans, resumed_changes = _history(killed)
    clean_spans, clean_changes = _history(clean)
    assert len(clean_spans) > 500
    assert resumed_spans == clean_spans
    assert resumed_changes == clean_changes


def test_sync_until_is_checked(tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    args = ["sync", "--prometheus", "http://127.0.0.1:9", "--ledger", str(ledger)]
    assert_one_error(invoke([*args, "--until", "1d", "--follow"]), 2, "--until or --follow")
    assert_one_error(
        invoke([*args, "--since", "1d", "--until", "2d"]), 2, "--since must be before --until"
    )
    assert not ledger.exists()


# -- the settings table feeds the CLI and the docs ---------------------------------------------
DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_configuration_doc_holds_the_current_table() -> None:
    assert settings_mod.markdown_table() in (DOCS / "configuration.md").read_text()


def test_every_settings_flag_is_a_real_option() -> None:
    helps = "\n".join(
        invoke([*command.split(), "--help"]).out
        for command in (
            "sync",
            "versions",
            "heatmap",
            "changes",
            "history",
            "audit",
            "workloads",
            "serve",
            "deploy record",
        )
    )
    flagged = [s for s in settings_mod.SETTINGS if s.cli_flag]
    assert {s.name for s in flagged} >= {"prometheus_url", "ledger"}
    for setting in flagged:
        assert f"{setting.cli_flag} " in helps, setting.cli_flag


def test_every_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    commands: tuple[str, ...] = ("sync", "versions", "heatmap", "changes", "history", "audit")
    commands += ("workloads", "impact", "capacity", "dora", "report", "deploy record")
    commands += ("deploy list",)
    for command in (*commands, "annotate"):
        assert f"\n## {command}\n" in text, command
        for option in _options(command):
            assert option in text, (command, option)


def _options(command: str) -> list[str]:
    """The long options a command's --help lists."""
    out = invoke([*command.split(), "--help"]).out
    found = re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z-]*)", out, flags=re.MULTILINE)
    assert found, out
    return sorted(set(found) - {"--help"})


def test_rules_output_is_written_whole_and_readable(tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    run = invoke(["rules", "--output", str(out)])
    assert run.code == 0, run.err
    assert out.read_text().startswith("groups:")
    assert out.stat().st_mode & 0o777 == 0o644  # Prometheus may run as another user
    assert [p.name for p in tmp_path.iterdir()] == ["rules.yml"]  # no temporary file left
    missing = invoke(["rules", "--output", str(tmp_path / "no" / "rules.yml")])
    assert_one_error(missing, 2, "cannot write")


def test_dashboards_with_and_without_the_panel(tmp_path: Path) -> None:
    both = invoke(["dashboards", "--output", str(tmp_path / "both")])
    assert both.code == 0, both.err
    alone = invoke(["dashboards", "--no-panel", "--output", str(tmp_path / "alone")])
    assert alone.code == 0, alone.err
    names = sorted(p.name for p in (tmp_path / "both").iterdir())
    assert names == [
        "imagetrail-image-versions.json",
        "imagetrail-panel-container-image-versions.json",
    ]
    assert [p.name for p in (tmp_path / "alone").iterdir()] == ["imagetrail-image-versions.json"]
