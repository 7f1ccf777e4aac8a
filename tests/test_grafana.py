"""Grafana dashboards: SDK models, PromQL, dotdc-style variables, layout and file writing."""

from __future__ import annotations

import json
import re
import stat
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models import dashboard as dash
from grafana_foundation_sdk.models import prometheus as prom
from grafana_foundation_sdk.models import stat as stat_m
from grafana_foundation_sdk.models import table as table_m
from grafana_foundation_sdk.models import timeseries as ts_m
from hypothesis import given
from hypothesis import strategies as st

from imagetrail import grafana
from imagetrail.errors import ConfigError, InputError
from imagetrail.grafana.annotation import PROMETHEUS_ANNOTATION_FIELDS
from imagetrail.grafana.dashboards import to_plain
from imagetrail.grafana.queries import variable_names, variable_query_expr
from paths import FIXTURES
from servers import Server

REPO = Path(__file__).resolve().parent.parent
DOTDC = FIXTURES / "grafana-dashboards-kubernetes"

# The panel of dotdc v2.4.0 this project starts from (MISSION.md).
DOTDC_ORIGINAL = (
    'count(rate(container_cpu_usage_seconds_total{namespace=~"$namespace", image!="", '
    'cluster="$cluster"}[$__rate_interval])) by (image)'
)
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_BUILTINS = {
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
}
# Metrics of the exporter that have no workload labels (process-wide sync/ledger health).
UNLABELLED = re.compile(r"imagetrail_(sync|ledger)_")


@pytest.fixture(scope="module")
def files() -> dict[str, dict[str, Any]]:
    return grafana.dashboards()


@pytest.fixture(scope="module")
def board(files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return files[grafana.DASHBOARD_FILE]


@pytest.fixture(scope="module")
def panel(files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return files[grafana.PANEL_FILE]


@pytest.fixture(scope="module")
def dotdc_namespaces() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DOTDC / "k8s-views-namespaces.json").read_text())
    return data


def _all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _all_panels(p.get("panels") or [])


def _selectors(node: Any) -> Iterator[Any]:
    if isinstance(node, promql_parser.VectorSelector):
        yield node
        return
    if isinstance(node, promql_parser.MatrixSelector):
        yield node.vector_selector
        return
    for attr in ("expr", "lhs", "rhs", "param"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, str | int | float):
            yield from _selectors(child)
    for child in getattr(node, "args", None) or []:
        yield from _selectors(child)


def _matchers(selector: Any) -> dict[str, tuple[str, str]]:
    return {m.name: (str(m.op), m.value) for m in selector.matchers.matchers}


# -- the SDK's models -----------------------------------------------------------------------
def test_dashboard_loads_into_the_sdk_models_and_round_trips(board: dict[str, Any]) -> None:
    model = grafana.load_dashboard(board)
    assert isinstance(model, dash.Dashboard)
    back = to_plain(model)
    # The SDK models the Grafana-datasource annotation only; the Prometheus annotation's
    # event formatting fields are the one thing it drops.
    lost = {}
    for ours, theirs in zip(board["annotations"]["list"], back["annotations"]["list"], strict=True):
        missing = set(ours) - set(theirs)
        if missing:
            assert missing == set(PROMETHEUS_ANNOTATION_FIELDS)
            lost[ours["name"]] = missing
            assert {k: v for k, v in ours.items() if k not in missing} == theirs
    assert list(lost) == ["Image changes"]
    assert {k: v for k, v in back.items() if k != "annotations"} == {
        k: v for k, v in board.items() if k != "annotations"
    }


def test_panels_load_as_typed_sdk_models(board: dict[str, Any]) -> None:
    model = grafana.load_dashboard(board)
    options = {"stat": stat_m.Options, "table": table_m.Options, "timeseries": ts_m.Options}
    panels: list[dash.Panel] = []
    for p in model.panels or []:
        if isinstance(p, dash.RowPanel):
            panels.extend(p.panels)
        else:
            panels.append(p)
    assert len(panels) == sum(1 for p in _all_panels(board["panels"]) if p["type"] != "row")
    for p in panels:
        assert isinstance(p.options, options[p.type_val]), p.title
        for target in p.targets or []:
            assert isinstance(target, prom.Dataquery), p.title
            assert not isinstance(target, UnknownDataquery)


def test_paste_in_panel_is_a_valid_panel(panel: dict[str, Any]) -> None:
    model = grafana.load_panel(panel)
    assert to_plain(model) == panel
    assert model.type_val == "timeseries"
    assert isinstance(model.options, ts_m.Options)
    assert panel["title"] == "Container image versions"
    assert panel["datasource"] == DATASOURCE
    assert [t["datasource"] for t in panel["targets"]] == [DATASOURCE]
    assert panel["gridPos"]["w"] <= 24


# -- stable output, pinned versions ---------------------------------------------------------
def test_output_is_stable(files: dict[str, dict[str, Any]]) -> None:
    assert grafana.dashboards() == files
    assert [grafana.render(d) for d in grafana.dashboards().values()] == [
        grafana.render(d) for d in files.values()
    ]
    assert files[grafana.DASHBOARD_FILE]["uid"] == "imagetrail-image-versions"
    assert list(files) == [
        "imagetrail-image-versions.json",
        "imagetrail-panel-container-image-versions.json",
    ]


def test_schema_and_grafana_versions_are_pinned(board: dict[str, Any]) -> None:
    assert board["schemaVersion"] == grafana.SCHEMA_VERSION == 41
    for p in _all_panels(board["panels"]):
        if p["type"] != "row":
            assert p["pluginVersion"] == grafana.GRAFANA_VERSION, p["title"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("grafana-foundation")]
    assert len(pins) == 1
    match = re.fullmatch(r"grafana-foundation-sdk==(\d+)!(\d+\.\d+\.\d+)", pins[0])
    assert match is not None, "pin one build exactly, epoch included"
    assert match[2] == grafana.GRAFANA_VERSION
    assert metadata.version("grafana-foundation-sdk") == f"{match[1]}!{match[2]}"


# -- PromQL -----------------------------------------------------------------------------------
def test_every_expression_parses_after_substitution(files: dict[str, dict[str, Any]]) -> None:
    count = 0
    for data in files.values():
        for title, expr in grafana.all_queries(data):
            promql_parser.parse(grafana.substitute_variables(expr))
            assert title
            count += 1
    panels = sum(
        len(p.get("targets") or [])
        for d in files.values()
        for p in _all_panels([d] if "type" in d else d["panels"])
    )
    # every target, the change annotation and the three query variables
    assert count == panels + 1 + 3


def test_all_queries_lists_targets_annotations_and_variables(board: dict[str, Any]) -> None:
    titles = [t for t, _ in grafana.all_queries(board)]
    assert "Container Image Used — original panel (counts pause)" in titles  # in a collapsed row
    assert "annotation: Image changes" in titles
    assert titles[-3:] == ["variable: $cluster", "variable: $namespace", "variable: $workload"]


def test_imagetrail_queries_are_filtered_by_every_variable(board: dict[str, Any]) -> None:
    sentinels = {"cluster": "C_SENTINEL", "namespace": "N_SENTINEL", "workload": "W_SENTINEL"}
    checked = 0
    for title, expr in grafana.all_queries(board):
        if title.startswith("variable:"):
            continue
        tree = promql_parser.parse(grafana.substitute_variables(expr, sentinels))
        for sel in _selectors(tree):
            m = _matchers(sel)
            if UNLABELLED.match(sel.name):
                assert not m, title  # nothing to filter on
                continue
            assert m["cluster"] == ("MatchOp.Re", "C_SENTINEL"), title
            assert m["namespace"] == ("MatchOp.Re", "N_SENTINEL"), title
            if sel.name.startswith("imagetrail_"):
                assert m["workload"] == ("MatchOp.Re", "W_SENTINEL"), title
            elif "original panel" not in title:
                assert m["pod"] == ("MatchOp.Re", "(W_SENTINEL)(-.+)?"), title
            if sel.name.startswith(("kube_", "container_")) and "original panel" not in title:
                assert m["container"][0] == "MatchOp.NotEqual", title
            checked += 1
    # one selector per query, except the sync-health ones that have no labels to filter
    labelled = [
        expr
        for title, expr in grafana.all_queries(board)
        if not title.startswith("variable:") and not UNLABELLED.search(expr)
    ]
    assert checked == len(labelled) > 10


def test_the_original_panel_is_dotdcs_query(board: dict[str, Any]) -> None:
    [original] = [p for p in _all_panels(board["panels"]) if p["title"].endswith("(counts pause)")]
    # $cluster is multi-value here, so it is matched as a regex; nothing else changes.
    assert original["targets"][0]["expr"] == DOTDC_ORIGINAL.replace(
        'cluster="$cluster"', 'cluster=~"$cluster"'
    )
    [row] = [p for p in board["panels"] if original in (p.get("panels") or [])]
    assert row["collapsed"] is True


def test_paste_in_panel_uses_only_dotdcs_variables(
    panel: dict[str, Any], dotdc_namespaces: dict[str, Any]
) -> None:
    used = set()
    for _, expr in grafana.all_queries(panel):
        used |= variable_names(expr)
        tree = promql_parser.parse(
            grafana.substitute_variables(expr, {"cluster": "C1", "namespace": "N1"})
        )
        for sel in _selectors(tree):
            m = _matchers(sel)
            # dotdc's $cluster is single-value and matched exactly, as its own panels do.
            assert m["cluster"] == ("MatchOp.Equal", "C1")
            assert m["namespace"] == ("MatchOp.Re", "N1")
            assert m["container"] == ("MatchOp.NotEqual", "")
    assert used - GRAFANA_BUILTINS == {"cluster", "namespace"}
    dotdc_vars = {v["name"] for v in dotdc_namespaces["templating"]["list"]}
    assert {"datasource", "cluster", "namespace"} <= dotdc_vars
    assert panel["datasource"]["uid"] == "${datasource}"


def test_paste_in_panel_replaces_dotdcs_panel(
    panel: dict[str, Any], dotdc_namespaces: dict[str, Any]
) -> None:
    """What docs/grafana.md tells users to do: swap it for "Container Image Used"."""
    patched = json.loads(json.dumps(dotdc_namespaces))
    [index] = [i for i, p in enumerate(patched["panels"]) if p["title"] == "Container Image Used"]
    old = patched["panels"][index]
    patched["panels"][index] = {**panel, "id": old["id"], "gridPos": old["gridPos"]}
    model = grafana.load_dashboard(patched)
    titles = [p.title for p in model.panels or [] if isinstance(p, dash.Panel)]
    assert "Container image versions" in titles
    assert "Container Image Used" not in titles
    defined = {v["name"] for v in patched["templating"]["list"]}
    assert variable_names(json.dumps(panel)) - GRAFANA_BUILTINS <= defined


# -- substitute_variables --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('x{a=~"$cluster"}', 'x{a=~"c1"}'),
        ('x{a=~"${cluster}"}', 'x{a=~"c1"}'),
        ('x{a=~"${cluster:regex}"}', 'x{a=~"c1"}'),
        ('x{a=~"[[cluster]]"}', 'x{a=~"c1"}'),
        ('x{a=~"[[cluster:pipe]]"}', 'x{a=~"c1"}'),
        ("rate(x[$__rate_interval])", "rate(x[1m])"),
        ("rate(x[$__interval])", "rate(x[30s])"),
        ("x offset $__range", "x offset 1h"),
        ("x > $__range_s", "x > 3600"),
        ("x > $__interval_ms", "x > 30000"),
        ('label_replace(x, "a", "$1", "b", "(.*)")', 'label_replace(x, "a", "$1", "b", "(.*)")'),
    ],
)
def test_substitute_variables_forms(expr: str, expected: str) -> None:
    assert grafana.substitute_variables(expr, {"cluster": "c1"}) == expected


def test_substitute_variables_defaults_match_everything() -> None:
    out = grafana.substitute_variables('x{cluster=~"$cluster", namespace=~"${namespace}"}')
    assert out == 'x{cluster=~".*", namespace=~".*"}'


def test_substitute_variables_without_all_values_needs_the_filters() -> None:
    expr = 'rate(x{cluster=~"$cluster"}[$__rate_interval])'
    with pytest.raises(InputError, match=r"\$cluster"):
        grafana.substitute_variables(expr, all_values=False)
    out = grafana.substitute_variables(expr, {"cluster": "c1"}, all_values=False)
    assert out == 'rate(x{cluster=~"c1"}[1m])'
    assert grafana.substitute_variables(expr, all_values=True) == 'rate(x{cluster=~".*"}[1m])'


def test_substitute_variables_refuses_unknown_variables() -> None:
    with pytest.raises(InputError, match=r"\$nope"):
        grafana.substitute_variables('x{a="$nope"}')


_NAMES = sorted(grafana.DEFAULT_VALUES)
_FORMS = ["${}", "${{{}}}", "${{{}:regex}}", "[[{}]]"]


@given(
    st.lists(
        st.one_of(
            st.text(st.characters(blacklist_characters="$[", codec="utf-8"), max_size=8),
            st.tuples(st.sampled_from(_NAMES), st.sampled_from(_FORMS)),
        ),
        max_size=12,
    )
)
def test_substitute_variables_replaces_every_reference_and_nothing_else(
    parts: list[str | tuple[str, str]],
) -> None:
    text, expected = "", ""
    for part in parts:
        if isinstance(part, str):
            # A word character right after a plain $name would extend the name.
            text += " " + part
            expected += " " + part
        else:
            name, form = part
            ref = "$" + name if form == "${}" else form.format(name)
            text += " " + ref
            expected += " " + grafana.DEFAULT_VALUES[name]
    assert grafana.substitute_variables(text) == expected
    assert variable_names(expected) == set()


def test_variable_query_expr() -> None:
    assert variable_query_expr('label_values(m{a=~"$b"}, ns)') == 'count by (ns) (m{a=~"$b"})'
    with pytest.raises(InputError):
        variable_query_expr("query_result(up)")


# -- variables as dotdc defines them -----------------------------------------------------
def test_datasource_variable_is_dotdcs(
    board: dict[str, Any], dotdc_namespaces: dict[str, Any]
) -> None:
    ours = board["templating"]["list"][0]
    theirs = dotdc_namespaces["templating"]["list"][0]
    # "current" ({} in dotdc: pick the default) and "queryValue" (legacy, empty) are left
    # for Grafana to fill in; the SDK's model has neither.
    for key in sorted(set(theirs) - {"current", "queryValue"}):
        assert ours[key] == theirs[key], key


def test_query_variables_follow_dotdc(
    board: dict[str, Any], dotdc_namespaces: dict[str, Any]
) -> None:
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert list(variables) == ["datasource", "cluster", "namespace", "workload"]
    dotdc = {v["name"]: v for v in dotdc_namespaces["templating"]["list"]}
    multi = dotdc["namespace"]  # dotdc's multi-value, "All" variable
    for name in ("cluster", "namespace", "workload"):
        ours = variables[name]
        for key in ("type", "datasource", "hide", "includeAll", "multi", "allValue", "regex"):
            assert ours[key] == multi[key], (name, key)
        assert ours["options"] == []
        assert ours["sort"] == dotdc["cluster"]["sort"]
        assert ours["query"]["refId"] == dotdc["cluster"]["query"]["refId"]
        assert ours["query"]["qryType"] == dotdc["cluster"]["query"]["qryType"]
        assert ours["query"]["query"].startswith("label_values(imagetrail_image_info")
    assert variables["cluster"]["refresh"] == dotdc["cluster"]["refresh"]
    assert variables["namespace"]["refresh"] == dotdc["namespace"]["refresh"]
    # a workload filter follows the time range, as dotdc's created_by does
    assert variables["workload"]["refresh"] == dotdc["created_by"]["refresh"]
    # each variable is narrowed by the ones before it
    assert variable_names(variables["namespace"]["query"]["query"]) == {"cluster"}
    assert variable_names(variables["workload"]["query"]["query"]) == {"cluster", "namespace"}


def test_every_variable_used_is_defined(board: dict[str, Any]) -> None:
    defined = {v["name"] for v in board["templating"]["list"]}
    text = json.dumps(board)
    assert variable_names(text) - GRAFANA_BUILTINS == defined


# -- structure ----------------------------------------------------------------------------
EXPECTED_LAYOUT = [
    ("row", "Overview"),
    ("stat", "Workload containers"),
    ("stat", "Versions running"),
    ("stat", "More than one version"),
    ("stat", "Rollouts in progress"),
    ("stat", "Changes in the churn window"),
    ("stat", "Re-pushed tags"),
    ("row", "Versions over time"),
    ("timeseries", "Image versions over time"),
    ("timeseries", "Containers per image (kube-state-metrics)"),
    ("row", "Original panel (dotdc, counts pause)"),
    ("timeseries", "Container Image Used — original panel (counts pause)"),
    ("timeseries", "Container Image Used — sandbox excluded"),
    ("row", "Now"),
    ("table", "Versions now"),
    ("table", "Workloads running more than one version"),
    ("table", "Recent changes"),
    ("table", "Digests (kube-state-metrics)"),
    ("table", "Image age"),
    ("row", "Sync health"),
    ("stat", "Sync"),
    ("stat", "Ledger lag"),
    ("stat", "Since the last successful sync"),
    ("stat", "Failed sync passes"),
    ("timeseries", "Ledger lag over time"),
]


def test_dashboard_has_the_expected_panels(board: dict[str, Any]) -> None:
    assert board["title"] == "Image versions"
    got = [(p["type"], p["title"]) for p in _all_panels(board["panels"])]
    assert got == EXPECTED_LAYOUT
    ids = [p["id"] for p in _all_panels(board["panels"])]
    assert len(ids) == len(set(ids))


def test_every_panel_and_target_uses_the_datasource_variable(board: dict[str, Any]) -> None:
    for p in _all_panels(board["panels"]):
        if p["type"] == "row":
            continue
        assert p["datasource"] == DATASOURCE, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE, p["title"]
            assert t["editorMode"] == "code"
        assert p["description"], p["title"]


def test_rows_follow_grafanas_layout_rules(board: dict[str, Any]) -> None:
    """Expanded rows have their panels beside them; collapsed rows hold theirs; no overlap."""
    occupied: set[tuple[int, int]] = set()
    for p in board["panels"]:
        if p["type"] == "row":
            assert p["panels"] == [] or p["collapsed"], p["title"]
        g = p["gridPos"]
        assert g["x"] >= 0, p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
        cells = {(g["x"] + i, g["y"] + j) for i in range(g["w"]) for j in range(g["h"])}
        assert not cells & occupied, p["title"]
        occupied |= cells
    ys = [p["gridPos"]["y"] for p in board["panels"]]
    assert ys == sorted(ys)


def test_tables_show_only_their_columns(board: dict[str, Any]) -> None:
    for p in _all_panels(board["panels"]):
        if p["type"] != "table":
            continue
        assert all(t["instant"] and t["format"] == "table" for t in p["targets"])
        [organize] = [t for t in p["transformations"] if t["id"] == "organize"]
        shown = organize["options"]["includeByName"]
        # target labels a scrape adds (job, instance, pod …) never become columns
        assert not {"job", "instance", "pod", "Time"} & set(shown), p["title"]
        sort = p["options"]["sortBy"][0]["displayName"]
        assert sort in organize["options"]["renameByName"].values(), p["title"]


def test_change_annotation(board: dict[str, Any]) -> None:
    builtin, changes = board["annotations"]["list"]
    assert builtin["builtIn"] == 1
    assert builtin["type"] == "dashboard"
    assert changes["datasource"] == DATASOURCE
    assert changes["expr"].startswith("imagetrail_last_change_timestamp_seconds{")
    assert changes["expr"].endswith("* 1000")  # Grafana wants milliseconds
    assert changes["useValueForTime"] is True
    assert "{{kind}}" in changes["titleFormat"]
    assert set(changes["tagKeys"].split(",")) == {"cluster", "namespace", "workload", "kind"}


# -- write_dashboards -----------------------------------------------------------------------
def test_write_dashboards_writes_every_file(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    paths = grafana.write_dashboards(out)
    expected = grafana.dashboards()
    assert paths == [out / name for name in expected]
    for path in paths:
        assert json.loads(path.read_text(encoding="utf-8")) == expected[path.name]
        assert path.read_text(encoding="utf-8").endswith("}\n")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # Grafana may run as another user
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)


def test_write_dashboards_can_leave_the_panel_out(tmp_path: Path) -> None:
    assert grafana.write_dashboards(tmp_path, include_panel=False) == [
        tmp_path / grafana.DASHBOARD_FILE
    ]
    assert [p.name for p in tmp_path.iterdir()] == [grafana.DASHBOARD_FILE]


def test_write_dashboards_replaces_files_atomically(tmp_path: Path) -> None:
    target = tmp_path / grafana.DASHBOARD_FILE
    target.write_text("old", encoding="utf-8")
    with target.open(encoding="utf-8") as reader:
        grafana.write_dashboards(tmp_path)
        # A reader of the old file still sees it whole: the new file was renamed over it,
        # not written into it.
        assert reader.read() == "old"
    assert json.loads(target.read_text(encoding="utf-8"))["uid"] == grafana.DASHBOARD_UID
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_write_dashboards_refuses_a_file_as_directory(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a directory"):
        grafana.write_dashboards(file)
    with pytest.raises(ConfigError, match=r"cannot create .*file/sub"):
        grafana.write_dashboards(file / "sub")


def test_write_dashboards_reports_an_unwritable_target(tmp_path: Path) -> None:
    # A directory where the file should go cannot be replaced (root ignores permissions,
    # so this is the failure every user can provoke).
    (tmp_path / grafana.PANEL_FILE).mkdir()
    with pytest.raises(ConfigError, match=re.escape(grafana.PANEL_FILE)) as info:
        grafana.write_dashboards(tmp_path)
    assert info.value.hint
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_real_prometheus_accepts_every_expression(
    files: dict[str, dict[str, Any]], prometheus_empty: Server
) -> None:
    """promql_parser is not Prometheus: the server itself must accept every query (RE2
    regexes, functions), as an instant and as a range query."""
    for data in files.values():
        for title, expr in grafana.all_queries(data):
            query = grafana.substitute_variables(expr)
            for path, extra in (
                ("query", {}),
                ("query_range", {"start": "1700000000", "end": "1700003600", "step": "60"}),
            ):
                answer = httpx.post(
                    f"{prometheus_empty.url}/api/v1/{path}", data={"query": query, **extra}
                )
                assert answer.status_code == 200, (title, answer.text)
                assert answer.json()["status"] == "success", title
