"""The child-process runner: measuring a process, the query kinds, span round trips."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench._paths import REPO
from bench.measure import ChildFailed, measure
from bench.runner import query_kind, span_from_json, span_to_json
from imagetrail.model import Span


def _peak_of(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nfrom bench.measure import peak_rss_mib\n"
         "print(peak_rss_mib())"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout)


def test_peak_rss_is_the_childs_own() -> None:
    hog = [bytearray(200_000_000)]  # the parent is big: the children must not inherit it
    big = _peak_of("b = bytearray(150_000_000); b[::4096] = b'x' * len(b[::4096])")
    small = _peak_of("pass")
    assert big >= 150
    assert small < 60, "the child reported its parent's high-water mark"
    assert hog


def test_measure_times_a_child_and_fails_on_errors_and_timeouts() -> None:
    wall = measure([sys.executable, "-c", "import time; time.sleep(0.3)"], cwd=REPO)
    assert 0.3 <= wall < 10
    with pytest.raises(ChildFailed, match="exited with 3"):
        measure([sys.executable, "-c", "raise SystemExit(3)"], cwd=REPO)
    with pytest.raises(ChildFailed, match="killed"):
        measure([sys.executable, "-c", "import time; time.sleep(30)"], cwd=REPO, timeout=0.5)


RUNNING = "kube_pod_container_status_running"
TERMINATED = "kube_pod_container_status_terminated"
KINDS = [
    ("/api/v1/query_range", f"sum by (x) (sum_over_time({RUNNING}[1h]))", "range started"),
    ("/api/v1/query_range", f"timestamp({TERMINATED}) * (1 - x) > 0", "range not terminated"),
    ("/api/v1/query", "min by (x) (min_over_time((timestamp(a) * a > 0)[1h:30s]))", "refine first"),
    ("/api/v1/query", "max by (x) (max_over_time((timestamp(a) * a)[1h:30s]))", "refine last"),
    ("/api/v1/query", "max by (a) (count_over_time(kube_pod_container_info[1d]))", "image labels"),
    ("/api/v1/query", "max by (a) (last_over_time(kube_replicaset_owner[1d]))", "owners"),
    ("/api/v1/query", f"sum by (x) (sum_over_time({RUNNING}[7d]))", "other"),
]


@pytest.mark.parametrize(("path", "query", "kind"), KINDS)
def test_query_kinds(path: str, query: str, kind: str) -> None:
    assert query_kind(path, query) == kind


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


@given(
    st.builds(
        Span,
        cluster=_text,
        namespace=_text,
        workload_kind=_text,
        workload=_text,
        pod=_text,
        container=_text,
        image=_text,
        digest=st.none() | _text,
        first_seen=st.floats(0, 2e9),
        last_seen=st.floats(0, 2e9),
        signal=st.sampled_from(["ksm", "cadvisor"]),
        workload_inferred=st.booleans(),
        pod_uid=_text,
    )
)
def test_spans_survive_the_trip_through_json(span: Span) -> None:
    import json

    assert span_from_json(json.loads(json.dumps(span_to_json(span)))) == span
