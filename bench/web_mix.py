"""The fixed request mixes of the web benchmark (pure: no I/O).

Each heatmap case is one picture a person asks for — the whole range at a laptop plot width,
a sub-range, a cluster, a namespace, a workload — given both as ``/api/v1/heatmap`` query
parameters and as the :class:`~imagetrail.service.query.Query` the original panel would run for the
same range, step and filters. Fixed, so two runs measure the same work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imagetrail.service.query import Query, Window

HOUR = 3600.0
DAY = 86400.0
PLOT_WIDTH = 1200  # px: a laptop browser window's plot area

Params = tuple[tuple[str, str], ...]


def _num(t: float) -> str:
    """Unix seconds as the API takes them (no trailing ``.0``: the CLI's form)."""
    return str(int(t)) if float(t).is_integer() else repr(t)


@dataclass(frozen=True, slots=True)
class HeatmapCase:
    """One heatmap request: a range, a plot width and the filters the panel also has."""

    name: str
    start: float
    end: float
    width: int = PLOT_WIDTH
    clusters: tuple[str, ...] = ()
    namespace: str | None = None
    workload: str | None = None  # the panel has no workload filter: ledger side only

    def params(self) -> Params:
        """``/api/v1/heatmap`` query parameters (the page's defaults: no sandbox, no digests)."""
        out: list[tuple[str, str]] = [
            ("from", _num(self.start)),
            ("to", _num(self.end)),
            ("width", str(self.width)),
        ]
        out += [("cluster", c) for c in self.clusters]
        if self.namespace is not None:
            out.append(("namespace", self.namespace))
        if self.workload is not None:
            out.append(("workload", self.workload))
        return tuple(out)

    @property
    def panel_comparable(self) -> bool:
        """Whether the panel's query can express the same filters (one cluster at most)."""
        return self.workload is None and len(self.clusters) <= 1

    def panel_query(self, step: float) -> Query:
        """The same range, step and filters for ``QueryContext.panel_heatmap``."""
        if not self.panel_comparable:
            raise ValueError(f"the panel cannot filter like {self.name!r}")
        return Query(
            cluster=self.clusters[0] if self.clusters else None,
            namespace=self.namespace,
            window=Window(start=self.start, end=self.end, step=step),
        )


def heatmap_mix(
    start: float,
    end: float,
    *,
    clusters: Sequence[str],
    namespaces: Sequence[str],
    workload: str | None = None,
    width: int = PLOT_WIDTH,
) -> list[HeatmapCase]:
    """The heatmap requests of one fleet, the full range first.

    ``clusters``/``namespaces``: what the fleet has (sorted); the mix picks the first of each.
    With ``workload`` a workload-filtered case is added (ledger only: the panel has none).
    """
    if end <= start:
        raise ValueError("empty range")
    if not clusters or not namespaces:
        raise ValueError("a fleet has at least one cluster and namespace")
    span = end - start
    last_day = max(start, end - DAY)
    cases = [
        HeatmapCase("full range", start, end, width),
        HeatmapCase(f"full range, cluster={clusters[0]}", start, end, width, (clusters[0],)),
        HeatmapCase(
            f"full range, namespace={namespaces[0]}", start, end, width, namespace=namespaces[0]
        ),
        HeatmapCase("last day", last_day, end, width),
        HeatmapCase("middle third, half width", start + span / 3, end - span / 3, width // 2),
    ]
    if len(clusters) > 1:
        pair = (clusters[0], clusters[1])
        cases.append(
            HeatmapCase(
                f"last day, cluster={pair[0]}, namespace={namespaces[-1]}",
                last_day,
                end,
                width,
                (pair[0],),
                namespaces[-1],
            )
        )
    if workload is not None:
        cases.append(
            HeatmapCase(f"full range, workload={workload}", start, end, width, workload=workload)
        )
    return cases


@dataclass(frozen=True, slots=True)
class LoadRequest:
    """One request of the load test: a kind (for per-kind figures), a path and parameters."""

    kind: str
    path: str
    params: Params = ()


def load_mix(
    start: float,
    end: float,
    *,
    clusters: Sequence[str],
    namespaces: Sequence[str],
    width: int = PLOT_WIDTH,
) -> list[LoadRequest]:
    """What a handful of people using the pages ask for, in a fixed order.

    Heavy answers (a month's heatmap) and light ones (the page shell) mixed as a browsing
    session mixes them: the page, its heatmap, a filtered heatmap, versions now, changes and
    the workloads list.
    """
    cases = heatmap_mix(start, end, clusters=clusters, namespaces=namespaces, width=width)
    at = ("at", _num(end - 60))
    rng: Params = (("from", _num(start)), ("to", _num(end)))
    last_day: Params = (("from", _num(max(start, end - DAY))), ("to", _num(end)))
    return [
        LoadRequest("page /", "/"),
        LoadRequest("heatmap", "/api/v1/heatmap", cases[0].params()),
        LoadRequest("versions", "/api/v1/versions", (at,)),
        LoadRequest("heatmap", "/api/v1/heatmap", cases[3].params()),
        LoadRequest("changes", "/api/v1/changes", rng),
        LoadRequest("page /", "/"),
        LoadRequest("heatmap", "/api/v1/heatmap", cases[1].params()),
        LoadRequest("workloads", "/api/v1/workloads", (("cluster", clusters[0]), at)),
        LoadRequest("changes", "/api/v1/changes", (*last_day, ("cluster", clusters[-1]))),
        LoadRequest("versions", "/api/v1/versions", (at, ("namespace", namespaces[0]))),
    ]


def client_schedule(mix: Sequence[LoadRequest], client: int) -> list[LoadRequest]:
    """The mix as client number ``client`` walks it: the same cycle, a different first step,
    so that concurrent clients do not all ask the same thing at once."""
    if not mix:
        raise ValueError("empty mix")
    k = client % len(mix)
    return [*mix[k:], *mix[:k]]
