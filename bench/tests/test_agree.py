"""Comparing two methods' spans, and a method's spans with the simulator's truth."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.agree import against_truth, agree, merged
from bench.tsdb import bench_config
from imagetrail.model import Span
from imagetrail.sim import simulate

TOL = 30.0

_spans = st.lists(
    st.builds(
        lambda pod, c, img, a, d: Span(
            "prod", "ns", "Deployment", "web", pod, c, img, None, float(a), float(a + d)
        ),
        st.sampled_from(["p1", "p2", "p3", "p4"]),
        st.sampled_from(["app", "sidecar"]),
        st.sampled_from(["nginx:1.25", "nginx:1.26"]),
        st.integers(0, 10**6),
        st.integers(0, 10**5),
    ),
    max_size=30,
)


@given(_spans)
def test_a_method_agrees_with_itself_in_any_order(spans: list[Span]) -> None:
    ag = agree(spans, list(reversed(spans)), tolerance=TOL)
    assert ag.same
    assert ag.common == ag.left == ag.right == len(merged(spans))


@given(_spans, st.data())
def test_an_edge_moved_past_the_tolerance_is_found(spans: list[Span], data: st.DataObject) -> None:
    base = list(merged(spans).values())
    if not base:
        return
    i = data.draw(st.integers(0, len(base) - 1))
    shift = data.draw(st.floats(TOL + 0.5, 1e5))
    moved = [*base]
    moved[i] = replace(base[i], last_seen=base[i].last_seen + shift)
    ag = agree(base, moved, tolerance=TOL)
    assert not ag.same
    assert ag.edges_beyond_tolerance == 1
    assert ag.max_last_diff == pytest.approx(shift)


@given(_spans)
def test_a_missing_span_is_found(spans: list[Span]) -> None:
    base = list(merged(spans).values())
    if not base:
        return
    ag = agree(base, base[1:], tolerance=TOL)
    assert (ag.same, ag.only_left, ag.only_right) == (False, 1, 0)


def test_pieces_of_one_span_are_joined() -> None:
    a = Span("c", "n", "Deployment", "w", "p", "app", "img:1", None, 100.0, 200.0)
    joined = merged([a, replace(a, first_seen=150.0, last_seen=900.0)])
    assert [(s.first_seen, s.last_seen) for s in joined.values()] == [(100.0, 900.0)]
    # another workload kind is another span
    assert len(merged([a, replace(a, workload_kind="StatefulSet")])) == 2


def test_truth_accepts_the_truth_and_rejects_a_shifted_copy() -> None:
    fleet = simulate(bench_config(60, days=2))
    start, end = fleet.config.start, fleet.end
    exact = against_truth(fleet.spans(), fleet, start, end, tolerance=TOL)
    assert exact.ok
    assert exact.checkable > 50
    late = [replace(s, first_seen=s.first_seen + 2 * TOL) for s in fleet.spans()]
    shifted = against_truth(late, fleet, start, end, tolerance=TOL)
    assert shifted.found == shifted.checkable
    assert shifted.exact < shifted.checkable
