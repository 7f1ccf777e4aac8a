"""The in-memory span index gives exactly what the ledger and the analysis functions give."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagetrail.analysis import heatmap, row_details
from imagetrail.analysis.spanindex import SpanIndex
from imagetrail.errors import InputError
from imagetrail.imageref import is_sandbox
from imagetrail.ledger import Ledger
from imagetrail.model import Span
from imagetrail.service.demo import build_demo_ledger
from test_analysis_properties import T0, spans_strategy

DAY = 86400.0


@st.composite
def fleets(draw: st.DrawFn) -> list[Span]:
    """The analysis property tests' spans, spread over two clusters, some running pause."""
    spans = draw(spans_strategy(max_size=40))
    out = []
    for i, span in enumerate(spans):
        cluster = draw(st.sampled_from(["prod", "staging"]))
        image = "registry.k8s.io/pause:3.9" if draw(st.integers(0, 9)) == 0 else span.image
        out.append(
            Span(
                **{
                    **{f: getattr(span, f) for f in Span.__dataclass_fields__},
                    "cluster": cluster,
                    "image": image,
                    "pod": f"pod-{i}",
                }
            )
        )
    return out


def _still_running(
    spans: list[Span], data_end: float, tolerance: float, every: list[Span]
) -> list[Span]:
    """Spans within ``tolerance`` of their cluster's newest sample (among ``every`` span, not
    only the chosen ones) run until ``data_end`` (docs/analysis.md, "Silence")."""
    from dataclasses import replace

    newest: dict[str, float] = {}
    for s in every:
        newest[s.cluster] = max(newest.get(s.cluster, s.last_seen), s.last_seen)
    return [
        replace(s, last_seen=data_end)
        if tolerance and min(newest[s.cluster], data_end) - tolerance <= s.last_seen < data_end
        else s
        for s in spans
    ]


@settings(max_examples=300, deadline=None)
@given(
    fleets(),
    st.integers(-10, 100),
    st.integers(1, 200),
    st.sampled_from([60.0, 300.0, 450.0]),
    st.sampled_from([0.0, 60.0, 120.0]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([None, "prod"]),
    st.integers(0, 2),
    st.booleans(),
)
def test_heatmap_equals_the_analysis_functions(
    spans: list[Span],
    start_min: int,
    length_min: int,
    step: float,
    tolerance: float,
    sandbox: bool,
    by_digest: bool,
    cluster: str | None,
    data_end_min: int,
    prefilter: bool,
) -> None:
    start, end = T0 + 60.0 * start_min, T0 + 60.0 * (start_min + length_min)
    # On the spans' minute grid, so that "last sample exactly at the edge" happens.
    data_end = max((s.last_seen for s in spans), default=T0) + 60.0 * data_end_min
    index = SpanIndex(spans, data_end=data_end)
    # Without the window in the mask, spans outside it reach the heatmap's own edge rules.
    mask = index.mask(
        cluster=cluster, start=start if prefilter else None, end=end if prefilter else None
    )
    got, got_rows = index.heatmap(
        mask,
        start=start,
        end=end,
        step=step,
        tolerance=tolerance,
        sandbox=sandbox,
        by_digest=by_digest,
    )
    chosen = [
        s
        for s in spans
        if (cluster is None or s.cluster == cluster)
        and (not prefilter or (s.last_seen >= start and s.first_seen <= end))
    ]
    chosen = _still_running(chosen, data_end, tolerance, spans)
    if not sandbox:
        chosen = [s for s in chosen if not is_sandbox(s.image)]
    assert got == heatmap(chosen, start=start, end=end, step=step, by_digest=by_digest)
    assert got_rows == row_details(chosen, start=start, end=end, by_digest=by_digest)
    assert index.select(mask, tolerance=tolerance) == chosen_all(spans, mask, data_end, tolerance)


def chosen_all(spans: list[Span], mask: object, data_end: float, tolerance: float) -> list[Span]:
    """What select() must give: the masked spans in order, still-running ones extended."""
    picked = [s for s, keep in zip(spans, mask, strict=True) if keep]  # type: ignore[call-overload]
    return _still_running(picked, data_end, tolerance, spans)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    led, _ = build_demo_ledger(tmp_path_factory.mktemp("idx") / "demo.db")
    return led


FILTERS = [
    {},
    {"cluster": "prod-eu"},
    {"cluster": "nowhere"},
    {"namespace_regex": "shop"},
    {"namespace_regex": "sh.*|data"},
    {"namespace_regex": "sho"},  # matched in full: nothing
    {"workload": "cart"},
    {"workload": "Deployment/cart"},
    {"workload": "deployment/cart"},
    {"workload": "shop/cart"},
    {"workload": "shop/Deployment/cart"},
    {"workload": "prod-eu/shop/Deployment/cart"},
    {"workload": "prod-eu/shop/StatefulSet/cart"},
    {"cluster": "staging", "namespace_regex": "data", "workload": "nightly-etl"},
]


@pytest.mark.parametrize("filters", FILTERS, ids=str)
def test_selection_equals_the_ledger(ledger: Ledger, filters: dict[str, str]) -> None:
    index = SpanIndex(ledger.spans(), data_end=ledger.synced_until())
    bounds = ledger.time_bounds()
    assert bounds is not None
    for start, end in [(None, None), (bounds[1] - 2 * DAY, None), (None, bounds[0] + DAY)]:
        want = ledger.spans(**filters, start=start, end=end)  # type: ignore[arg-type]
        got = index.select(index.mask(**filters, start=start, end=end))  # type: ignore[arg-type]
        assert got == want, (filters, start, end)


def test_clusters_means_any_of(ledger: Ledger) -> None:
    index = SpanIndex(ledger.spans())
    both = index.select(index.mask(clusters=["prod-eu", "staging"]))
    assert both == [s for s in ledger.spans() if s.cluster in ("prod-eu", "staging")]


def test_bad_filters_are_the_same_errors(ledger: Ledger) -> None:
    index = SpanIndex(ledger.spans())
    for filters in ({"namespace_regex": "("}, {"workload": "a/b/c/d/e"}, {"workload": "a//b"}):
        with pytest.raises(InputError) as from_ledger:
            ledger.spans(**filters)  # type: ignore[arg-type]
        with pytest.raises(InputError) as from_index:
            index.mask(**filters)  # type: ignore[arg-type]
        assert from_index.value.message == from_ledger.value.message


def test_an_empty_index(tmp_path: Path) -> None:
    index = SpanIndex([])
    assert index.bounds is None
    assert len(index) == 0
    heat, rows = index.heatmap(index.mask(), start=T0, end=T0 + 600, step=60)
    assert heat.images == ()
    assert rows == {}


@pytest.mark.parametrize(("first", "counted"), [(T0 - 300.0, False), (T0 - 299.0, True)])
def test_a_span_just_before_the_first_column(first: float, counted: bool) -> None:
    """A span ending before the first column counts there only if it began within a step."""
    span = Span("c", "n", "Deployment", "w", "p", "app", "nginx:1", None, first, T0 - 1.0)
    index = SpanIndex([span])
    heat, _ = index.heatmap(index.mask(), start=T0, end=T0 + 600, step=300.0)
    assert heat == heatmap([span], start=T0, end=T0 + 600, step=300.0)
    assert heat.counts == (((1, 0, 0),) if counted else ())


def test_a_heatmap_uses_the_index_its_spans_were_read_from(tmp_path: Path) -> None:
    """A sync may swap in a new index between an answer's read and its heatmap: the mask of
    the first must not meet the spans of the second (a 500 under `serve` + `sync --follow`)."""
    from contextlib import nullcontext

    from imagetrail.scope import Scope
    from imagetrail.service.spans import Grid, IndexSpans, SilenceLimits

    ledger, end = build_demo_ledger(tmp_path / "demo.db")
    spans = ledger.spans()
    # Each call gives a new index, as after each sync pass; here they shrink (a forgotten
    # cluster), so a mask meeting another index's arrays cannot pass unnoticed.
    first = SpanIndex(spans)
    later = iter([first, SpanIndex(spans[:-40]), SpanIndex(spans[:-80])])
    source = IndexSpans(
        lambda: next(later),
        lambda: nullcontext(ledger),
        SilenceLimits(silent_after=3600.0, forget_after=7 * DAY),
        lambda _ledger: None,
        60.0,
    )
    frame = source.read(Scope(), end - DAY, end)
    heat, rows = source.heatmap(frame, Grid(end - DAY, end, 3600.0, 60.0))
    assert frame.mask is not None
    expected = first.heatmap(
        frame.mask, start=end - DAY, end=end, step=3600.0, tolerance=60.0, silence=frame.silence
    )
    assert (heat, rows) == expected
    assert frame.spans == first.select(frame.mask)
    ledger.close()
