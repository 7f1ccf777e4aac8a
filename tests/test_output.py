import csv
import io
import json

import pytest
from rich.console import Console

from imagetrail.cli.render import render_heatmap, render_rows
from imagetrail.model import Change, ChangeKind, Heatmap
from imagetrail.service.shapes import record
from imagetrail.text import csv_cell

HOSTILE = 'evil"\n<script>alert(1)</script>[bold red]x[/] =cmd|calc'


def _change(image: str) -> Change:
    return Change(
        "c1",
        "ns",
        "Deployment",
        "web",
        "app",
        "nginx:1",
        None,
        image,
        None,
        ChangeKind.UPGRADE,
        1_700_000_000.0,
        None,
    )


def test_record_formats_times_and_kinds() -> None:
    row = record(_change("nginx:2"))
    assert row["started"] == "2023-11-14T22:13:20Z"
    assert row["finished"] is None
    assert row["kind"] == "upgrade"


def test_json_round_trips_hostile_strings(capsys: pytest.CaptureFixture[str]) -> None:
    render_rows([record(_change(HOSTILE))], "json")
    assert json.loads(capsys.readouterr().out)[0]["to_image"] == HOSTILE


def test_csv_neutralises_formulas_and_keeps_text(capsys: pytest.CaptureFixture[str]) -> None:
    render_rows([{"image": "=HYPERLINK(1)"}, {"image": HOSTILE}], "csv")
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[1] == ["'=HYPERLINK(1)"]
    assert rows[2] == [HOSTILE]
    assert csv_cell("+1") == "'+1"
    assert csv_cell("nginx") == "nginx"


def test_table_prints_markup_as_text() -> None:
    console = Console(record=True, width=200, color_system=None)
    render_rows([{"image": "[bold red]x[/]"}], "table", console=console)
    assert "[bold red]x[/]" in console.export_text()


def test_heatmap_formats(capsys: pytest.CaptureFixture[str]) -> None:
    hm = Heatmap((0.0, 60.0), ("a:1", HOSTILE), ((1, 2), (0, 3)))
    render_heatmap(hm, "json")
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "times": ["1970-01-01T00:00:00Z", "1970-01-01T00:01:00Z"],
        "images": ["a:1", HOSTILE],
        "counts": [[1, 2], [0, 3]],
    }
    render_heatmap(hm, "csv")
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["time", "image", "containers"]
    assert len(rows) == 4  # zero cells are left out
    console = Console(record=True, width=200, color_system=None)
    render_heatmap(hm, "table", console=console)
    assert "<script>" in console.export_text()
