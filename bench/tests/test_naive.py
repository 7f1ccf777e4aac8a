"""The naive span finder: chunking, folding of dense answers, span building."""

from __future__ import annotations

import promql_parser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.naive import (
    NOT_TERMINATED,
    STARTED,
    Edges,
    build_spans,
    grid_queries,
    key_of,
    step_chunks,
)
from imagetrail.sources.promapi import QueryResult, Series
from imagetrail.sources.prometheus import Owner

STEP = 30.0


@given(
    start=st.integers(0, 10**6).map(lambda k: k * STEP),
    steps=st.integers(1, 3000),
    per=st.integers(1, 800),
)
def test_step_chunks_cover_every_step_once(start: float, steps: int, per: int) -> None:
    end = start + steps * STEP
    seen: list[float] = []
    for a, b in step_chunks(start, end, STEP, per * STEP):
        assert start < a <= b <= end
        n = round((b - a) / STEP) + 1
        assert n <= per  # every request stays under the points limit it was given
        seen += [a + i * STEP for i in range(n)]
    assert seen == [start + k * STEP for k in range(1, steps + 1)]


def test_step_chunks_refuses_a_chunk_shorter_than_a_step() -> None:
    with pytest.raises(ValueError, match="step"):
        list(step_chunks(0.0, 100.0, 30.0, 10.0))


def test_queries_are_valid_promql() -> None:
    for query in (STARTED, NOT_TERMINATED, *grid_queries(STEP)):
        promql_parser.parse(query)
    assert "[30s]" in str(promql_parser.parse(grid_queries(STEP)[0]))


_labels = st.fixed_dictionaries(
    {
        "cluster": st.sampled_from(["a", "b"]),
        "namespace": st.just("ns"),
        "pod": st.sampled_from(["p1", "p2", "p3"]),
        "uid": st.just("u"),
        "container": st.sampled_from(["app", "envoy"]),
    }
)
_points = st.lists(
    st.tuples(st.integers(0, 2000), st.integers(0, 2000)).map(
        lambda tv: (tv[0] * STEP, float(tv[1] * 7))
    ),
    max_size=20,
)


@given(
    answers=st.lists(st.lists(st.tuples(_labels, _points), max_size=6), max_size=5),
    lo=st.integers(0, 10000).map(float),
    width=st.integers(0, 20000).map(float),
    stamped=st.booleans(),
)
def test_fold_is_min_and_max_over_every_answer(
    answers: list[list[tuple[dict[str, str], list[tuple[float, float]]]]],
    lo: float,
    width: float,
    stamped: bool,
) -> None:
    hi = lo + width
    edges = Edges()
    points = 0
    for answer in answers:
        result = QueryResult("matrix", tuple(Series(lab, tuple(vals)) for lab, vals in answer))
        points += edges.fold(result, edge="first", lo=lo, hi=hi, stamped=stamped)
        edges.fold(result, edge="last", lo=lo, hi=hi, stamped=stamped)
    expected: dict[tuple[str, ...], list[float]] = {}
    for answer in answers:
        for lab, vals in answer:
            times = [v if stamped else t for t, v in vals]
            expected.setdefault(key_of(lab), []).extend(x for x in times if lo < x <= hi)
    expected = {k: v for k, v in expected.items() if v}
    assert edges.first == {k: min(v) for k, v in expected.items()}
    assert edges.last == {k: max(v) for k, v in expected.items()}
    assert points == sum(len(vals) for answer in answers for _, vals in answer)


def _key(pod: str, container: str = "app") -> tuple[str, ...]:
    return ("prod", "shop", pod, f"uid-{pod}", container)


def test_build_spans_names_images_and_owners() -> None:
    digest = "sha256:" + "ab" * 32
    edges = Edges(
        first={_key("web-7d4b9c8f5d-x2x9z"): 100.0, _key("pause-pod"): 5.0, _key("gone"): 1.0},
        last={_key("web-7d4b9c8f5d-x2x9z"): 400.0, _key("pause-pod"): 50.0},
    )
    attrs = {
        _key("web-7d4b9c8f5d-x2x9z"): {
            "image": "nginx:1.25",
            "image_id": f"docker.io/library/nginx@{digest}",
            "image_spec": "nginx:1.25",
        },
        _key("pause-pod"): {"image": "registry.k8s.io/pause:3.9", "image_id": "", "image_spec": ""},
    }
    spans = build_spans(edges, attrs, {})
    # the sandbox is no workload image; a container without kube_pod_container_info has none
    assert len(spans) == 1
    (span,) = spans
    assert (span.image, span.digest) == ("docker.io/library/nginx:1.25", digest)
    assert (span.first_seen, span.last_seen) == (100.0, 400.0)
    # no kube_pod_owner: the workload is guessed from the pod name, and marked so
    assert (span.workload_kind, span.workload, span.workload_inferred) == (
        "Deployment",
        "web",
        True,
    )
    owned = build_spans(
        edges, attrs, {("prod", "shop", "web-7d4b9c8f5d-x2x9z"): Owner("Deployment", "shop-web")}
    )
    assert (owned[0].workload, owned[0].workload_inferred) == ("shop-web", False)


def test_build_spans_never_ends_before_it_starts() -> None:
    edges = Edges(first={_key("a"): 500.0}, last={_key("a"): 100.0})
    attrs = {_key("a"): {"image": "redis:7", "image_id": "", "image_spec": ""}}
    (span,) = build_spans(edges, attrs, {})
    assert span.first_seen == span.last_seen == 500.0
