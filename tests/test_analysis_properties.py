"""Property tests: the analysis functions against brute-force oracles and invariants."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import replace
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from imagetrail.analysis import (
    audit,
    current_version,
    default_step,
    detect_changes,
    distribution,
    heatmap,
    history,
    segments,
    workloads,
)
from imagetrail.analysis._common import max_concurrent
from imagetrail.model import Change, ChangeKind, CutShort, Span

T0 = 1_700_000_000.0
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
IMAGES = [
    "docker.io/library/nginx:1.25.3",
    "docker.io/library/nginx:1.25.4",
    "docker.io/library/nginx:1.26.0",
    "docker.io/library/nginx:latest",
    f"docker.io/library/nginx@{D1}",
    "ghcr.io/acme/api:1.0.0",
    D2,  # a bare image id as cAdvisor sometimes reports it: not a reference
]
WORKLOADS = [("Deployment", "web"), ("CronJob", "report"), ("DaemonSet", "agent")]


@st.composite
def spans_strategy(draw: st.DrawFn, max_size: int = 25) -> list[Span]:
    """Spans on a coarse grid (whole minutes) so that ties and touching ends happen often."""
    count = draw(st.integers(0, max_size))
    result = []
    for i in range(count):
        kind, name = draw(st.sampled_from(WORKLOADS))
        first = T0 + 60.0 * draw(st.integers(0, 120))
        result.append(
            Span(
                cluster="prod",
                namespace=draw(st.sampled_from(["shop", "ops"])),
                workload_kind=kind,
                workload=name,
                pod=f"pod-{i}",
                container=draw(st.sampled_from(["app", "sidecar"])),
                image=draw(st.sampled_from(IMAGES)),
                digest=draw(st.sampled_from([None, D1, D2])),
                first_seen=first,
                last_seen=first + 60.0 * draw(st.integers(0, 60)),
            )
        )
    return result


def _minutes(lo: int, hi: int) -> st.SearchStrategy[float]:
    return st.integers(lo, hi).map(lambda m: T0 + 60.0 * m)


@given(spans_strategy(), _minutes(-10, 100), st.sampled_from([60.0, 300.0, 450.0]))
def test_heatmap_matches_the_definition(spans: list[Span], start: float, step: float) -> None:
    end = start + 7000.0
    hm = heatmap(spans, start=start, end=end, step=step)
    assert len(set(hm.images)) == len(hm.images)
    for j, at in enumerate(hm.times):
        expected = Counter(
            s.image
            for s in spans
            if s.covers(at) or (at - step < s.first_seen <= s.last_seen <= at)
        )
        got = {image: hm.counts[i][j] for i, image in enumerate(hm.images) if hm.counts[i][j]}
        assert got == dict(expected)
        # Column sums are the distribution at that instant plus the short-lived extras.
        short = sum(1 for s in spans if not s.covers(at) and at - step < s.first_seen <= at)
        assert sum(col[j] for col in hm.counts) == (
            sum(v.containers for v in distribution(spans, at=at)) + short
        )


@given(spans_strategy(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_input_order(spans: list[Span], rnd: random.Random) -> None:
    shuffled = list(spans)
    rnd.shuffle(shuffled)
    since, until = T0 + 600.0, T0 + 9000.0
    assert detect_changes(spans, since=since, until=until) == detect_changes(
        shuffled, since=since, until=until
    )
    start, end, step = T0, T0 + 9000.0, 300.0
    assert heatmap(spans, start=start, end=end, step=step) == heatmap(
        shuffled, start=start, end=end, step=step
    )
    assert history(spans) == history(shuffled)
    assert workloads(spans) == workloads(shuffled)
    assert audit(spans, start=T0 + 600, end=T0 + 3000) == audit(
        shuffled, start=T0 + 600, end=T0 + 3000
    )
    assert distribution(spans, at=T0 + 1800) == distribution(shuffled, at=T0 + 1800)


@given(spans_strategy(), _minutes(0, 60), st.integers(0, 200), st.sampled_from([0.0, 60.0]))
def test_change_invariants(spans: list[Span], since: float, length: int, tol: float) -> None:
    until = since + 60.0 * length
    found = detect_changes(spans, since=since, until=until, tolerance=tol, removed_after=600)
    keys = {(s.cluster, s.namespace, s.workload_kind, s.workload, s.container) for s in spans}
    for c in found:
        assert since <= c.started <= until
        assert (c.from_image, c.from_digest) != (c.to_image, c.to_digest)
        assert c.finished is None or c.finished >= c.started
        key = (c.cluster, c.namespace, c.workload_kind, c.workload, c.container)
        assert key in keys
        own = [s for s in spans if (s.cluster, s.namespace, s.workload_kind, s.workload,
                                    s.container) == key]  # fmt: skip
        if c.kind is ChangeKind.ADDED:
            # Containers already there when the window opens are the initial state.
            assert c.started == min(s.first_seen for s in own) > since + tol
        if c.kind is ChangeKind.REMOVED:
            assert c.workload_kind not in ("Job", "CronJob")
            assert c.started == max(s.last_seen for s in own) < until - 600
        if c.kind is ChangeKind.TAG_REPUSH:
            assert c.from_image == c.to_image
        if c.finished is not None and c.finished != c.started:
            assert any(s.last_seen == c.finished and s.version == (c.from_image, c.from_digest)
                       for s in own)  # fmt: skip
    assert [c.started for c in found] == sorted(c.started for c in found)


@given(spans_strategy(), _minutes(0, 200))
def test_spans_ending_before_since_add_nothing_new(spans: list[Span], since: float) -> None:
    """A workload container whose spans all started before ``since`` changes only by going away."""
    early = [s for s in spans if s.first_seen < since]
    found = detect_changes(early, since=since, until=since + 86400.0)
    assert [c for c in found if c.kind is not ChangeKind.REMOVED] == []


@given(spans_strategy(), _minutes(-5, 200))
def test_current_version_follows_the_latest_start(spans: list[Span], at: float) -> None:
    for key in {(s.namespace, s.workload, s.container) for s in spans}:
        own = [s for s in spans if (s.namespace, s.workload, s.container) == key]
        started = [s for s in own if s.first_seen <= at]
        current = current_version(own, at)
        if not started:
            assert current is None
            continue
        latest = max(s.first_seen for s in started)
        candidates = {s.version for s in started if s.first_seen == latest}
        if len(candidates) == 1:
            assert current in candidates
        segs = segments(own)
        assert all(a.version != b.version for a, b in pairwise(segs))


@given(spans_strategy())
def test_history_invariants(spans: list[Span]) -> None:
    entries = history(spans)
    placed = sum(len(seg.spans) for key in {(s.namespace, s.workload_kind, s.workload,
                                              s.container) for s in spans}
                 for seg in segments([s for s in spans if (s.namespace, s.workload_kind,
                                      s.workload, s.container) == key]))  # fmt: skip
    assert len(entries) <= placed <= len(spans)
    for e in entries:
        assert e.containers_max >= 1
        assert e.first_seen <= e.last_seen
    assert [(e.container, e.first_seen) for e in entries] == sorted(
        (e.container, e.first_seen) for e in entries
    )


@given(spans_strategy(), _minutes(0, 100), st.integers(0, 100))
def test_audit_matches_brute_force(spans: list[Span], start: float, length: int) -> None:
    end = start + 60.0 * length
    rows = audit(spans, start=start, end=end)
    expected: dict[tuple[object, ...], list[Span]] = {}
    for s in spans:
        if s.first_seen <= end and s.last_seen >= start:
            key = (s.namespace, s.workload_kind, s.workload, s.container, s.image, s.digest)
            expected.setdefault(key, []).append(s)
    assert len(rows) == len(expected)
    for row in rows:
        own = expected[(row.namespace, row.workload_kind, row.workload, row.container,
                        row.image, row.digest)]  # fmt: skip
        assert row.first_seen == max(start, min(s.first_seen for s in own))
        assert row.last_seen == min(end, max(s.last_seen for s in own))
        # Brute force over every instant where the count can change.
        instants = {max(start, s.first_seen) for s in own}
        assert row.containers_max == max(sum(1 for s in own if s.covers(x)) for x in instants)


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 20)), max_size=30))
def test_max_concurrent_matches_brute_force(raw: list[tuple[int, int]]) -> None:
    intervals = [(float(a), float(a + d)) for a, d in raw]
    brute = max((sum(1 for a, b in intervals if a <= x <= b) for x, _ in intervals), default=0)
    assert max_concurrent(intervals) == brute


@given(st.floats(0, 2e9), st.floats(1, 1e9), st.integers(1, 1000))
def test_default_step_bounds_the_number_of_points(start: float, length: float, n: int) -> None:
    step = default_step(start, start + length, target_points=n)
    assert step >= 30.0
    assert length / step <= n or step == 30.0


def test_heatmap_of_100k_spans_is_fast() -> None:
    rnd = random.Random(7)
    images = [f"ghcr.io/acme/svc{i % 40}:1.{i // 40}.0" for i in range(400)]
    spans = []
    for i in range(100_000):
        first = T0 + rnd.uniform(0, 14 * 86400)
        spans.append(
            Span("prod", "shop", "Deployment", f"w{i % 500}", f"p{i}", "app",
                 rnd.choice(images), None, first, first + rnd.expovariate(1 / 20000))
        )  # fmt: skip
    began = time.perf_counter()
    hm = heatmap(spans, start=T0, end=T0 + 14 * 86400, step=14 * 86400 / 299)
    elapsed = time.perf_counter() - began
    assert len(hm.times) == 300
    assert len(hm.images) == 400
    assert elapsed < 1.0, f"heatmap of 100k spans took {elapsed:.2f}s"


@given(spans_strategy(), st.sampled_from([0.0, 60.0]))
def test_no_rollout_stays_open_once_the_next_change_started(spans: list[Span], tol: float) -> None:
    found = detect_changes(spans, since=T0, until=T0 + 60.0 * 240, tolerance=tol)
    by_key: dict[tuple[str, ...], list[Change]] = {}
    for c in found:
        by_key.setdefault((c.cluster, c.namespace, c.workload_kind, c.workload, c.container), [])
        by_key[(c.cluster, c.namespace, c.workload_kind, c.workload, c.container)].append(c)
    for changes in by_key.values():
        for before, after in pairwise(changes):
            assert before.state != "in-progress", (before, after)
            if before.cut_short is not None:
                assert before.finished is None
                assert before.ended == after.started
                back = (after.to_image, after.to_digest) == (before.from_image, before.from_digest)
                assert (before.cut_short is CutShort.ABORTED) == back


@given(spans_strategy(), _minutes(10, 150), st.integers(0, 6 * 24 * 60))
def test_silence_is_never_a_change(spans: list[Span], cut: float, silent_minutes: int) -> None:
    # The cluster's data stops at ``cut`` (something ran until then); whatever the sync's
    # watermark says later, within a week the answer is what it was when the data stopped.
    stopped = [replace(s, last_seen=min(s.last_seen, cut)) for s in spans if s.first_seen <= cut]
    stopped.append(
        Span("prod", "kube-system", "DaemonSet", "kp", "kp", "kp", "kp:1", None, T0, cut)
    )
    at_cut = detect_changes(stopped, since=T0, until=cut)
    later = detect_changes(stopped, since=T0, until=cut + 60.0 * silent_minutes)
    assert later == at_cut
