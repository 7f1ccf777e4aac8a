"""A new user's first hour on the demo ledger (issue 12's review): the tables at 80 and 100
columns, ``-o wide``, the demo's own screen and the error lines. Each test names the defect
the review quoted; each failed on it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clirun import Run, assert_one_error, invoke
from imagetrail.cli.render import shortest_image
from imagetrail.service.demo import build_demo_ledger
from imagetrail.service.shapes import CHANGE_COLUMNS
from imagetrail.text import measure_text, rough_duration
from imagetrail.timeutil import format_time
from tablecases import END, TABLES

DAY = 86400.0
STATES = {"done", "running", "failed", "stuck", "aborted", "superseded"}
VERDICTS = {"regression", "improvement", "no-change", "insufficient-data", "unmeasured"}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("first-hour") / "demo.db"
    led, _ = build_demo_ledger(path, end=END)
    led.close()
    return path


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def run(ledger: Path, *args: str, columns: int = 100) -> Run:
    done = invoke(args, {"IMAGETRAIL_LEDGER": str(ledger), "COLUMNS": str(columns)})
    assert done.code == 0, done.err
    return done


def since(days: float) -> list[str]:
    return ["--from", format_time(END - days * DAY), "--to", format_time(END)]


def header(out: str) -> list[str]:
    return re.split(r"\s{2,}", out.split("\n")[1].strip())


def column(out: str, name: str) -> list[str]:
    """The cells of column ``name`` (by the header's position; a left-aligned column)."""
    lines = out.rstrip("\n").split("\n")
    names = header(out)
    at = lines[1].index(name)
    after = names.index(name) + 1
    end = lines[1].index(names[after], at) if after < len(names) else None
    return [line[at:end].strip() for line in lines[2:]]


# 1. changes at 80: "only STARTED CLUSTER TO IMAGE; KIND and WORKLOAD dropped".
def test_changes_at_80_keep_kind_cluster_and_state(ledger: Path) -> None:
    out = run(ledger, *TABLES["changes"], columns=80).out
    names = header(out)
    assert names[:3] == ["STARTED", "KIND", "CLUSTER"], out
    assert {"TO IMAGE", "STATE"} <= set(names), out
    for cell in column(out, "TO IMAGE"):
        assert cell == "—" or re.fullmatch(r"(?:[^/\s]+/)*…?/?[^/\s…]+:[^/\s…]+", cell), cell
    # Rows of several clusters whose images are short: every column a reader needs stays.
    out = run(ledger, "changes", *since(14), "-w", "shop/cart", columns=80).out
    assert header(out) == ["STARTED", "KIND", "CLUSTER", "WORKLOAD", "TO IMAGE", "STATE"], out
    assert not any(cell.endswith("…") for cell in column(out, "WORKLOAD")), out


def test_an_image_may_lose_its_host_as_a_last_resort() -> None:
    from imagetrail.cli.render import elide_image

    image = "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.14.0"
    assert elide_image(image, 30) == "registry.k8s.io/…/kube-state-metrics:v2.14.0"
    assert elide_image(image, 30, host=False) == "…/kube-state-metrics:v2.14.0"
    assert elide_image("registry.k8s.io/kube-scheduler:v1.31.2", 30, host=False) == (
        "…/kube-scheduler:v1.31.2"
    )
    assert elide_image("nginx:1.27", 3, host=False) == "nginx:1.27"
    # A list of images loses the middles of its longest ones.
    assert elide_image("a.io/b/c/d:1, e.io/f:2", 18) == "a.io/…/d:1, e.io/f:2"


def test_changes_at_100_shorten_the_image_before_a_workload(ledger: Path) -> None:
    """ "legacy-gate…": a workload name is cut only once the images lost their middles."""
    out = run(ledger, "changes", *since(7), columns=100).out
    rows = run(ledger, "changes", *since(7), "-o", "json").json()
    assert "WORKLOAD" in header(out), out
    if any(cell.endswith("…") for cell in column(out, "WORKLOAD")):
        lines = out.split("\n")
        at = lines[1].index("TO IMAGE")
        image_width = lines[1].index("STATE") - at - 2
        least = max(len(shortest_image(r["to_image"] or "—")) for r in rows)
        assert image_width <= least, out


# 2. "failed 2026-…", "stuck: ErrIm…": a STATE column, the time and reason in -o wide.
@pytest.mark.parametrize("width", [80, 100])
def test_changes_have_a_state_column(ledger: Path, width: int) -> None:
    args = ["changes", *since(14), "-n", "logistics"]
    out = run(ledger, *args, columns=width).out
    states = column(out, "STATE")
    assert set(states) <= STATES, out
    assert {"failed", "stuck"} <= set(states), out
    assert "FINISHED" not in out
    assert "2026-" not in "".join(states)
    wide = run(ledger, *args, "-o", "wide", columns=width).out
    assert {"STATE", "FINISHED", "REASONS"} <= set(header(wide)), wide
    assert "ErrImagePull" in wide
    assert re.search(r"\(0/\d pods ran\)", wide), wide
    # JSON and CSV keep their shapes.
    rows = run(ledger, *args, "-o", "json").json()
    assert set(rows[0]) == set(CHANGE_COLUMNS)
    assert {r["state"] for r in rows} <= {
        "finished",
        "in-progress",
        "failed",
        "stuck",
        "aborted",
        "superseded",
    }
    assert run(ledger, *args, "-o", "csv").csv()[0].keys() == set(CHANGE_COLUMNS)


# 3. heatmap at 80: "CONTAINERS OVER    …", MAX dropped, LAST "…", tags cut, raw ms title.
@pytest.mark.parametrize("width", [80, 100])
def test_heatmap_reads_at_80(ledger: Path, width: int) -> None:
    out = run(ledger, "heatmap", *since(14), columns=width).out
    lines = out.rstrip("\n").split("\n")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\dZ → \d{4}-\d\d-\d\d \d\d:\d\dZ  \(█ = \d+\)", lines[0]
    ), lines[0]
    names = header(out)
    assert names[0] == "IMAGE"
    assert names[-2:] == ["MAX", "LAST"], names
    assert names[1] in ("CONTAINERS", "CONTAINERS OVER TIME"), names
    assert all(re.search(r"\s\d+\s+\d+$", line) for line in lines[2:]), "numbers whole"
    images = [line.split()[0] for line in lines[2:]]
    assert len(set(images)) == len(images), "two rows look the same"
    answer = run(ledger, "heatmap", *since(14), "-o", "json").json()
    for shown, image in zip(images, answer["images"], strict=True):
        assert shown.endswith("/" + image.split("/")[-1]) or shown == image, (shown, image)
    bar = min(len(re.sub(r"[^·▁▂▃▄▅▆▇█]", "", line)) for line in lines[2:])
    assert bar >= 15, out
    assert all(len(line) <= width for line in lines)


# 4. impact: "insufficien…".
@pytest.mark.parametrize("width", [60, 80, 100])
def test_impact_never_cuts_a_verdict(ledger: Path, width: int) -> None:
    out = run(ledger, *TABLES["impact"], columns=width).out
    verdicts = column(out, "VERDICT")
    assert verdicts
    assert set(verdicts) <= VERDICTS, out
    assert "insufficient-data" in verdicts


# 5. settings: "IMAGETRAIL_PROM…".
@pytest.mark.parametrize("width", [70, 80, 100])
def test_settings_never_cut_env_names(width: int) -> None:
    from imagetrail import settings as settings_mod

    out = invoke(["settings"], {"COLUMNS": str(width)}).out
    for setting in settings_mod.SETTINGS:
        assert re.search(rf"(?:^|\s){setting.env}(?:\s|$)", out, re.M), (setting.env, out)
    assert all(len(line) <= width for line in out.split("\n"))


# 6. workloads at 80: names cut and CONTAINERS dropped.
def test_workloads_at_80_keep_the_counts(ledger: Path) -> None:
    out = run(ledger, *TABLES["workloads"], columns=80).out
    names = header(out)
    assert names[:2] == ["CLUSTER", "WORKLOAD"], out
    assert {"IMAGES", "CONTAINERS"} <= set(names), out
    assert all(cell.isdigit() for cell in column(out, "CONTAINERS"))


# 7. trailing blanks; -o wide padded wider than its content.
@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("name", ["versions", "changes", "audit", "workloads", "dora", "impact"])
def test_no_trailing_blanks(ledger: Path, name: str, width: int) -> None:
    for fmt in ("table", "wide"):
        out = run(ledger, *TABLES[name], "-o", fmt, columns=width).out
        lines = out.rstrip("\n").split("\n")
        assert not [line for line in lines if line != line.rstrip()], (fmt, out)
    heat = run(ledger, "heatmap", *since(3), columns=width).out
    assert all(line == line.rstrip() for line in heat.split("\n"))


# 8. "dora over 13d23h" and "over 14d".
def test_dora_title_is_humanised(ledger: Path) -> None:
    args = ["dora", "--from", format_time(END - 14 * DAY + 3600), "--to", format_time(END)]
    assert run(ledger, *args).out.split("\n")[0] == "dora over 14d"
    assert rough_duration(13 * DAY + 23 * 3600) == "14d"
    assert rough_duration(30 * 3600) == "1d6h"
    assert rough_duration(5 * 3600 + 50 * 60) == "6h"
    assert rough_duration(90 * 60) == "1h30m"
    assert measure_text(1.89e8, "bytes/container") == "180 MiB"
    assert measure_text(0.251, "cores/container") == "0.251"


# 9. the demo's screen.
@pytest.mark.parametrize("width", [80, 100])
def test_the_demo_screen_reads_well(tmp_path: Path, width: int) -> None:
    path = tmp_path / "d.db"
    done = invoke(["demo", "--no-serve", "--ledger", str(path)], {"COLUMNS": str(width)})
    assert done.code == 0, done.err
    lines = done.out.rstrip("\n").split("\n")
    assert lines[0].startswith("Simulated "), lines[0]
    assert lines[0].endswith(f"→ {path}"), "one line, not split around →"
    commands = [line for line in lines if "imagetrail " in line and "IMAGETRAIL_LEDGER" in line]
    assert len(commands) == 8
    for line in commands:
        assert re.fullmatch(rf"  IMAGETRAIL_LEDGER={re.escape(str(path))} imagetrail \S.*", line)
        assert not line.endswith(("--since", " "))
    at = lines.index(next(line for line in lines if line.startswith("4. Change impact")))
    assert re.fullmatch(r"   regression: \S+ \S+  \S+ → \S+", lines[at + 2]), lines[at + 1 : at + 3]
    assert "e+0" not in done.out, "memory humanised"
    assert "MiB" in done.out
    # 2.: the rollout's state whole, no cut "where".
    second = lines.index(next(line for line in lines if "and its changes" in line))
    assert header("\n".join(lines[second:])) == [
        "STARTED",
        "KIND",
        "CONTAINER",
        "TO IMAGE",
        "STATE",
        "TOOK",
    ]
    assert "aborted" in "\n".join(lines[second : second + 6])
    # 3.: where the rows come from, and images as section 1 prints them.
    third = lines.index(next(line for line in lines if line.startswith("3. This week")))
    names = header("\n".join(lines[third:]))
    assert {"CLUSTER", "WORKLOAD", "TO IMAGE", "STATE"} <= set(names), names
    images = column("\n".join(lines[third : third + 17]), "TO IMAGE")
    assert all("/" in image or image == "—" for image in images), images
    assert "docker.io/bitnami/kafka:3.8.1" in images or "…/kafka:3.8.1" in "".join(images)
    for line in lines:
        if not line.startswith(("  IMAGETRAIL_LEDGER", "Simulated")):
            assert len(line) <= width, line
            assert line == line.rstrip(), line


# 10. an unknown command: click's Usage/Error block.
def test_an_unknown_command_is_one_error_line() -> None:
    done = invoke(["version"], {"COLUMNS": "80"})
    line = assert_one_error(done, 2, "version", "imagetrail --version")
    assert "Usage" not in done.err + done.out
    assert "did you mean" in line
    assert_one_error(invoke(["chnages"], {"COLUMNS": "40"}), 2, "imagetrail changes")
