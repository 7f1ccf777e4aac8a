"""Panel builders with the house defaults, and a grid layout that places them.

Everything here goes through grafana-foundation-sdk's builders; the helpers only fix the
choices every imagetrail panel shares: the ``${datasource}`` variable as data source (as the
dotdc dashboards do), queries in code mode, the Grafana version the panel options are
written for, explicit ids and grid positions (stable output, no surprises on import).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as ts_b
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dash
from grafana_foundation_sdk.models import prometheus as prom

# The Grafana release whose panel options these dashboards are written for; the SDK build is
# pinned to the same release in pyproject.toml.
GRAFANA_VERSION = "11.6.0"
# The dashboard JSON schema version of that release.
SCHEMA_VERSION = 41

DATASOURCE = dash.DataSourceRef(type_val="prometheus", uid="${datasource}")

GRID_WIDTH = 24


class Layout:
    """Places panels left to right on Grafana's 24-column grid, rows full width."""

    def __init__(self) -> None:
        self._x = 0
        self._y = 0
        self._row_height = 0
        self._next_id = 1
        self._collapsed_row: dash.GridPos | None = None

    def next_id(self) -> int:
        """A fresh panel id (ids must be unique within a dashboard)."""
        panel_id = self._next_id
        self._next_id += 1
        return panel_id

    def place(self, w: int, h: int) -> dash.GridPos:
        """The position of the next ``w`` × ``h`` panel."""
        if self._x + w > GRID_WIDTH:
            self._newline()
        pos = dash.GridPos(h=h, w=w, x=self._x, y=self._y)
        self._x += w
        self._row_height = max(self._row_height, h)
        return pos

    def row(self, *, collapsed: bool = False) -> dash.GridPos:
        """The position of a row header: full width, below everything placed so far."""
        self._newline()
        pos = dash.GridPos(h=1, w=GRID_WIDTH, x=0, y=self._y)
        self._y += 1
        self._collapsed_row = pos if collapsed else None
        return pos

    def end_collapsed_row(self) -> None:
        """Continue just below the collapsed row: its panels take no room until expanded."""
        if self._collapsed_row is None:
            raise ValueError("no collapsed row is open")
        self._x = 0
        self._y = self._collapsed_row.y + 1
        self._row_height = 0
        self._collapsed_row = None

    def _newline(self) -> None:
        self._y += self._row_height
        self._x = 0
        self._row_height = 0


def target(
    expr: str,
    legend: str = "",
    *,
    ref_id: str = "A",
    instant: bool = False,
    table: bool = False,
) -> prom_b.Dataquery:
    """A Prometheus query on ``${datasource}``: a range query, or an instant one for tables."""
    query = (
        prom_b.Dataquery()
        .expr(expr)
        .ref_id(ref_id)
        .datasource(DATASOURCE)
        .editor_mode(prom.QueryEditorMode.CODE)
    )
    query = query.instant() if instant else query.range()
    if legend:
        query = query.legend_format(legend)
    if table:
        query = query.format(prom.PromQueryFormat.TABLE)
    return query


def thresholds(*steps: tuple[float | None, str]) -> dash_b.ThresholdsConfig:
    """Absolute thresholds; the first step's value is ``None`` (the base colour)."""
    return (
        dash_b.ThresholdsConfig()
        .mode(dash.ThresholdsMode.ABSOLUTE)
        .steps([dash.Threshold(value=value, color=color) for value, color in steps])
    )


def value_mappings(texts: Mapping[str, tuple[str, str]]) -> list[dash.ValueMapping]:
    """One value → (display text, colour) mapping per entry, in order."""
    return [
        dash.ValueMap(
            options={
                value: dash.ValueMappingResult(text=text, color=color, index=index)
                for index, (value, (text, color)) in enumerate(texts.items())
            }
        )
    ]


def stat(
    layout: Layout,
    title: str,
    description: str,
    expr: str,
    *,
    unit: str = "short",
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
    mappings: Mapping[str, tuple[str, str]] | None = None,
    w: int = 4,
    h: int = 4,
) -> stat_b.Panel:
    """A single number: the last value of ``expr``."""
    panel = (
        stat_b.Panel()
        .id(layout.next_id())
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .grid_pos(layout.place(w, h))
        .with_target(target(expr, instant=True))
        .unit(unit)
        .thresholds(thresholds(*steps))
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if mappings:
        panel = panel.mappings(value_mappings(mappings))
    return _versioned(panel)


def timeseries(
    layout: Layout,
    title: str,
    description: str,
    targets: Sequence[prom_b.Dataquery],
    *,
    bars: bool = False,
    unit: str = "short",
    w: int = 24,
    h: int = 10,
) -> ts_b.Panel:
    """A graph over the dashboard's time range, legend as a table on the right."""
    panel = (
        ts_b.Panel()
        .id(layout.next_id())
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .grid_pos(layout.place(w, h))
        .targets(list(targets))
        .unit(unit)
        .min(0)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.RIGHT)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
            .sort_by("Last *")
            .sort_desc(True)
        )
        .tooltip(
            common_b.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .span_nulls(False)
        .show_points(common.VisibilityMode.NEVER)
        .thresholds(thresholds((None, "green")))
    )
    if bars:
        # Stacked bars, as the original panel draws its counts.
        panel = (
            panel.draw_style(common.GraphDrawStyle.BARS)
            .fill_opacity(60)
            .line_width(1)
            .stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL).group("A"))
        )
    else:
        panel = (
            panel.draw_style(common.GraphDrawStyle.LINE)
            .line_interpolation(common.LineInterpolation.STEP_AFTER)
            .fill_opacity(10)
            .line_width(1)
        )
    return _versioned(panel)


def table(
    layout: Layout,
    title: str,
    description: str,
    expr: str,
    *,
    columns: Sequence[tuple[str, str]],
    value_column: str,
    sort_by: str,
    sort_desc: bool = True,
    overrides: Mapping[str, Sequence[dash.DynamicConfigValue]] | None = None,
    w: int = 12,
    h: int = 10,
) -> table_b.Panel:
    """An instant query as a table: label ``columns`` (label, header) in order, then the value.

    Every other field (``Time``, ``__name__``, ``job``, ``instance`` …) is hidden, so a
    scrape's target labels never clutter the table.
    """
    rename = dict(columns)
    rename["Value"] = value_column
    index = {label: i for i, (label, _) in enumerate(columns)}
    index["Value"] = len(columns)
    organize = dash.DataTransformerConfig(
        id_val="organize",
        options={
            "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True},
            "indexByName": index,
            "renameByName": rename,
            "includeByName": dict.fromkeys(index, True),
        },
    )
    panel = (
        table_b.Panel()
        .id(layout.next_id())
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .grid_pos(layout.place(w, h))
        .with_target(target(expr, instant=True, table=True))
        .with_transformation(organize)
        .filterable(True)
        .show_header(True)
        .cell_height(common.TableCellHeight.SM)
        .sort_by([common_b.TableSortByFieldState().display_name(sort_by).desc(sort_desc)])
        .thresholds(thresholds((None, "green")))
    )
    for name, properties in (overrides or {}).items():
        panel = panel.override_by_name(name, list(properties))
    return _versioned(panel)


def row(layout: Layout, title: str, *, collapsed: bool = False) -> dash_b.Row:
    """A row header; panels are added with ``with_panel``.

    After a collapsed row's panels, call :meth:`Layout.end_collapsed_row`.
    """
    pos = layout.row(collapsed=collapsed)
    return dash_b.Row(title).id(layout.next_id()).grid_pos(pos).collapsed(collapsed)


_P = TypeVar("_P", stat_b.Panel, ts_b.Panel, table_b.Panel)


def _versioned(panel: _P) -> _P:
    # The builders have no setter for pluginVersion; Grafana runs a panel's option
    # migrations from this version on, so it must name the release the options are for.
    panel.build().plugin_version = GRAFANA_VERSION
    return panel
