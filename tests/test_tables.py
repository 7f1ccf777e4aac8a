"""Tables for people, kubectl-style: one line per row at 100 columns, the image never cut,
humanised numbers; and golden snapshots of a few, on a demo ledger with a fixed end.

Regenerate the snapshots and docs/cli.md's examples (after checking the diff) with
``UPDATE_GOLDEN=1 pytest tests/test_tables.py``.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest

from clirun import Run, invoke
from imagetrail.cli.render import elide_image, render_heatmap, render_rows
from imagetrail.service.demo import build_demo_ledger
from imagetrail.text import per_day_text, percent_text
from imagetrail.timeutil import format_time
from tablecases import END, TABLES, render_docs, run_table

GOLDEN = Path(__file__).parent / "golden" / "tables"
WIDTHS = (80, 100, 160)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "demo.db"
    led, end = build_demo_ledger(path, end=END)
    led.close()
    assert end == END
    return path


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def run(ledger: Path, *args: str, columns: int = 100, **env: str) -> Run:
    return invoke(args, {"IMAGETRAIL_LEDGER": str(ledger), "COLUMNS": str(columns), **env})


# -- one line per row -------------------------------------------------------------------------
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(TABLES))
def test_one_line_per_row(ledger: Path, name: str, width: int) -> None:
    args = TABLES[name]
    rows = run(ledger, *args, "-o", "json").json()
    assert isinstance(rows, list)
    assert rows, f"the demo ledger has an answer for {name}"
    table = run(ledger, *args, columns=width)
    assert table.code == 0, table.err
    lines = table.out.rstrip("\n").split("\n")
    too_long = [line for line in lines if len(line.rstrip()) > width]
    assert not too_long, "\n".join(too_long)
    # A title, the header, one line per row: nothing wrapped.
    assert len(lines) == len(rows) + 2, table.out
    assert lines[1] == lines[1].upper(), "kubectl-style headers"
    assert not set("│─┃━") & set(table.out), "no box lines"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["versions", "audit", "changes", "workloads", "history"])
def test_the_image_is_never_cut(ledger: Path, name: str, width: int) -> None:
    """Each image is in the table whole, or with only the middle of its path elided: its
    name with the tag stays (registry.k8s.io/…/controller:v1.11.3), and so does its registry
    unless that is the last resort that keeps the columns (…/controller:v1.11.3)."""
    key = "to_image" if name == "changes" else "images" if name == "workloads" else "image"
    rows = run(ledger, *TABLES[name], "-o", "json").json()
    assert isinstance(rows, list)
    table = run(ledger, *TABLES[name], columns=width).out
    wide = run(ledger, *TABLES[name], "-o", "wide", columns=width).out
    for row in rows:
        images = row[key] if isinstance(row[key], list) else [row[key]]
        for image in images:
            if image is None:
                continue
            assert image in wide
            parts = image.split("/")
            host = f"(?:{re.escape(parts[0])}/)?" if len(parts) > 1 else ""
            elided = host + r"(?:[^/\s]+/)*…/(?:[^/\s]+/)*" + re.escape(parts[-1])
            assert image in table or re.search(r"(?:\s|^)" + elided + r"(?:\s|$)", table), (
                image,
                table,
            )


def test_an_image_loses_the_middle_of_its_path_first() -> None:
    image = "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.14.0"
    assert elide_image(image, 80) == image
    assert elide_image(image, 50) == "registry.k8s.io/…/kube-state-metrics:v2.14.0"
    a_b_c = "r.io/a/b/c/name:1"
    assert elide_image(a_b_c, 15) == "r.io/…/c/name:1"
    assert elide_image(a_b_c, 3) == "r.io/…/name:1"  # never less: its name stays whole
    assert elide_image("ghcr.io/acme/cart:2.5.0", 5) == "ghcr.io/…/cart:2.5.0"
    assert elide_image("nginx:1.27", 3) == "nginx:1.27"
    assert elide_image("a/b/c d/e/f", 3) == "a/b/c d/e/f"  # not one image


def test_short_digests_in_tables_full_in_wide_json_csv(ledger: Path) -> None:
    rows = run(ledger, *TABLES["versions"], "-o", "json").json()
    assert isinstance(rows, list)
    digest = rows[0]["digest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    table = run(ledger, *TABLES["versions"]).out
    assert digest[:19] in table
    assert digest not in table
    assert digest in run(ledger, *TABLES["versions"], "-o", "wide").out
    assert digest in run(ledger, *TABLES["versions"], "-o", "csv").out
    # -f and --format stay as aliases of -o.
    assert run(ledger, *TABLES["versions"], "-f", "json").json() == rows
    assert (
        run(ledger, *TABLES["versions"], "--format", "wide").out
        == run(ledger, *TABLES["versions"], "--output", "wide").out
    )


def test_times_compact_in_tables_rfc3339_in_json(ledger: Path) -> None:
    rows = run(ledger, *TABLES["changes"], "-o", "json").json()
    assert isinstance(rows, list)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", rows[0]["started"])
    table = run(ledger, *TABLES["changes"]).out
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\dZ  ", table.split("\n")[2])
    assert not re.search(r"\d\d:\d\d:\d\d", table)


def test_a_cluster_column_where_rows_come_from_several(ledger: Path) -> None:
    for name in ("audit", "workloads", "dora"):
        header = run(ledger, *TABLES[name]).out.split("\n")[1]
        assert header.startswith("CLUSTER "), (name, header)
    # The trial's `changes -w shop/cart` mixed rows of three clusters with no cluster column.
    for width in (80, 100):
        fortnight = ["--from", format_time(END - 14 * 86400), "--to", format_time(END)]
        out = run(ledger, "changes", *fortnight, "-w", "shop/cart", columns=width).out
        names = out.split("\n")[1].split()
        assert names[:3] == ["STARTED", "KIND", "CLUSTER"], (width, out)
        assert {"prod-eu", "prod-us", "staging"} <= set(out.split())
    # Over the whole fleet at 100 columns the row still says what, where and which workload.
    names = run(ledger, *TABLES["changes"]).out.split("\n")[1].split()
    assert names[:4] == ["STARTED", "KIND", "CLUSTER", "WORKLOAD"], names


def test_wide_adds_columns(ledger: Path) -> None:
    narrow = run(ledger, *TABLES["workloads"], columns=160).out.split("\n")[1].split()
    wide = run(ledger, *TABLES["workloads"], "-o", "wide", columns=160).out.split("\n")[1]
    assert "INFERRED" not in narrow
    assert "INFERRED" in wide
    assert "KIND" in wide
    # history had no wide view: the digest and the most containers at once are in it.
    narrow_header = run(ledger, *TABLES["history"], columns=160).out.split("\n")[1]
    wide_out = run(ledger, *TABLES["history"], "-o", "wide", columns=100).out
    assert "CONTAINERS MAX" not in narrow_header
    assert "CONTAINERS MAX" in wide_out.split("\n")[1]
    assert re.search(r"sha256:[0-9a-f]{64}", wide_out)


# -- the raw numbers of the trial -------------------------------------------------------------
def test_settings_show_durations_as_written(tmp_path: Path) -> None:
    env = {"IMAGETRAIL_CHUNK": "7d", "IMAGETRAIL_ALERT_IMAGE_MAX_AGE": "90d"}
    out = invoke(["settings"], {**env, "COLUMNS": "100"}).out
    values = {line.split()[0]: line.split()[1] for line in out.split("\n")[2:] if line.strip()}
    assert values["chunk"] == "7d"
    assert values["alert_image_max_age"] == "90d"
    assert values["timeout"] == "2m"
    assert "604800" not in out
    assert "7776000" not in out
    assert not re.search(r"\s\d+\.0\s", out), out


def test_dora_rates_are_humanised(ledger: Path) -> None:
    out = run(ledger, *TABLES["dora"]).out
    lines = out.split("\n")
    assert {"FREQUENCY", "FAILURE RATE"} <= set(re.split(r"\s{2,}", lines[1].strip()))
    for line in lines[2:]:
        if line.strip():
            assert re.search(r"\b\d+\.\d/(day|week)\b", line), line
            assert re.search(r"\b\d+\.\d %", line), line
    assert not re.search(r"\b0\.\d{3,}", out), "no raw fractions"
    assert per_day_text(1 / 14) == "0.5/week"
    assert per_day_text(3.2) == "3.2/day"
    assert percent_text(1 / 13) == "7.7 %"


def test_dora_divides_by_the_days_the_ledger_holds(ledger: Path) -> None:
    # 30 days asked of a ledger that holds 14: the rates are per the 14 days recorded.
    rows = run(
        ledger, "dora", "--from", format_time(END - 30 * 86400), "--to", format_time(END), "-o",
        "json",
    ).json()  # fmt: skip
    assert isinstance(rows, list)
    assert rows
    for row in rows:
        assert row["days"] == pytest.approx(14.0)
        assert row["deployments_per_day"] == pytest.approx(row["deployments"] / 14, abs=1e-4)
    title = run(
        ledger, "dora", "--from", format_time(END - 30 * 86400), "--to", format_time(END)
    ).out.split("\n")[0]
    assert title.strip() == "dora over 14d"


def test_workloads_booleans_are_yes_or_dash(ledger: Path) -> None:
    out = run(ledger, *TABLES["workloads"], "-o", "wide", columns=250).out
    assert "False" not in out
    assert "True" not in out
    lines = out.split("\n")
    at = lines[1].index("INFERRED")
    assert {line[at : at + 3].strip() for line in lines[2:] if line.strip()} <= {"yes", "—"}


@pytest.mark.parametrize("width", [80, 100, 160])
def test_heatmap_uses_the_width_it_has(ledger: Path, width: int) -> None:
    args = [
        "heatmap",
        "--from",
        format_time(END - 14 * 86400),
        "--to",
        format_time(END),
        "--step",
        "1h",
    ]
    out = run(ledger, *args, columns=width).out
    lines = out.rstrip("\n").split("\n")
    assert all(len(line.rstrip()) <= width for line in lines[1:])
    bar = max(len(re.sub(r"[^·▁▂▃▄▅▆▇█]", "", line)) for line in lines)
    if width >= 100:
        # The bar fills what the image, MAX and LAST leave (up to one bucket's rounding).
        assert bar > width - 80
    wider = run(ledger, *args, columns=width + 60).out
    assert max(len(re.sub(r"[^·▁▂▃▄▅▆▇█]", "", line)) for line in wider.split("\n")) > bar


def test_render_heatmap_fits_a_console(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    from imagetrail.model import Heatmap

    times = tuple(float(t * 300) for t in range(500))
    heatmap = Heatmap(times=times, images=("a:1", "b:2"), counts=((1,) * 500, (2,) * 500))
    for width in (60, 120, 200):
        console = Console(width=width, record=True, file=io.StringIO())
        render_heatmap(heatmap, "table", console=console)
        text = console.export_text()
        assert max(len(line.rstrip()) for line in text.split("\n")) <= width
        assert f"{'█' * (width - 40)}" in text


@pytest.mark.parametrize(
    ("name", "kind"), [("x.md", "# "), ("x.markdown", "# "), ("x.html", "<!DOCTYPE html>")]
)
def test_report_format_from_the_output_extension(ledger: Path, name: str, kind: str) -> None:
    args = ["report", "--no-impact", "--from", format_time(END - 86400), "--to", format_time(END)]
    done = run(ledger, *args, "-o", name)
    assert done.code == 0, done.err
    assert Path(name).read_text().startswith(kind)
    # --format wins over the name.
    done = run(ledger, *args, "-o", name, "--format", "html")
    assert Path(name).read_text().startswith("<!DOCTYPE html>")
    done = run(ledger, *args, "-o", "-")
    assert done.out.startswith("# "), "Markdown on stdout"


def test_a_narrow_console_drops_columns_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    rows = [{"image": "registry.example/app:1.0", "a": "x" * 30, "b": "y" * 30, "c": "z"}]
    console = Console(width=40, record=True, file=io.StringIO())
    render_rows(rows, "table", drop=["b", "a"], title="t", console=console)
    header = console.export_text().split("\n")[1].split()
    assert header == ["IMAGE", "A", "C"]


# -- golden snapshots -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["versions", "audit", "dora"])
def test_golden(ledger: Path, name: str) -> None:
    got = run_table(ledger, name, 100)
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
    assert got == path.read_text()


def test_docs_show_the_generated_tables(ledger: Path) -> None:
    docs = Path(__file__).parent.parent / "docs" / "cli.md"
    text = docs.read_text()
    assert text.count("<!-- table: ") >= 8
    fresh = render_docs(text, ledger)
    if os.environ.get("UPDATE_GOLDEN"):
        docs.write_text(fresh)
        text = fresh
    assert fresh == text, "docs/cli.md is stale: run UPDATE_GOLDEN=1 pytest tests/test_tables.py"


def test_the_demo_screen_fits_80_columns(tmp_path: Path) -> None:
    done = invoke(["demo", "--no-serve", "--ledger", str(tmp_path / "d.db")], {"COLUMNS": "80"})
    assert done.code == 0, done.err
    lines = done.out.split("\n")
    first = lines.index(next(line for line in lines if line.startswith("1. Versions")))
    assert lines[first + 1].split() == ["IMAGE", "CONTAINERS", "CLUSTERS", "WORKLOADS"]
    for line in lines[first + 2 : first + 14]:
        assert len(line.rstrip()) <= 80
        assert re.match(r"^\S+:\S+\s+\d+\s+\d+\s", line), line  # a whole image, one line
    tables = [line for line in lines if not line.startswith(("  IMAGETRAIL_LEDGER", "Simul"))]
    assert all(len(line.rstrip()) <= 80 for line in tables)
