"""Heatmap, distribution, workloads, history, audit and default_step on hand-built spans."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from imagetrail.analysis import (
    audit,
    bucket_times,
    default_step,
    detect_changes,
    distribution,
    heatmap,
    history,
    workloads,
)
from imagetrail.errors import InputError
from imagetrail.imageref import compare_tags
from imagetrail.model import (
    AuditEntry,
    ChangeKind,
    HistoryEntry,
    Span,
    VersionCount,
    WorkloadSummary,
)
from paths import FIXTURES

T0 = 1_700_000_000.0
NGINX = "docker.io/library/nginx"
API = "ghcr.io/acme/api"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def t(minutes: float) -> float:
    return T0 + 60.0 * minutes


def span(
    pod: str,
    image: str,
    first: float,
    last: float,
    *,
    digest: str | None = None,
    kind: str = "Deployment",
    workload: str = "web",
    container: str = "app",
    namespace: str = "shop",
    inferred: bool = False,
) -> Span:
    return Span(
        "prod", namespace, kind, workload, pod, container, image, digest, t(first), t(last),
        workload_inferred=inferred,
    )  # fmt: skip


# --- heatmap -----------------------------------------------------------------------------


def test_heatmap_counts_covering_spans_and_orders_rows_by_version() -> None:
    spans = [
        span("a", f"{NGINX}:1.10.0", 0, 10),
        span("b", f"{NGINX}:1.9.0", 0, 4),
        span("c", f"{NGINX}:1.9.0", 2, 6),
        span("d", f"{API}:2.0.0", 5, 10),
        span("e", f"{NGINX}:1.10.0", 3, 3, digest=D1),  # digests of one tag share the row
    ]
    hm = heatmap(spans, start=t(0), end=t(10), step=120)
    assert hm.times == tuple(t(m) for m in range(0, 11, 2))
    assert hm.images == (f"{API}:2.0.0", f"{NGINX}:1.9.0", f"{NGINX}:1.10.0")
    assert hm.counts == (
        (0, 0, 0, 1, 1, 1),
        (1, 2, 2, 1, 0, 0),
        (1, 1, 2, 1, 1, 1),  # e (3..3) covers no time, but lies inside (2, 4]
    )


def test_heatmap_keeps_short_lived_containers_in_their_bucket() -> None:
    spans = [
        span("short", f"{API}:1.0.0", 4.2, 4.5),  # inside (4, 6]: counted at 6
        span("edge", f"{API}:1.0.0", 6.5, 8),  # ends exactly on 8: covers 8
        span("before", f"{API}:1.0.0", -1.5, -1),  # inside (-2, 0]: counted at 0
        span("late", f"{API}:1.0.0", 10.5, 10.6),  # after the last time: not counted
    ]
    hm = heatmap(spans, start=t(0), end=t(10), step=120)
    assert hm.counts == ((1, 0, 0, 1, 1, 0),)


def test_heatmap_end_off_the_grid_and_empty_input() -> None:
    hm = heatmap([], start=t(0), end=t(5), step=120)
    assert hm.times == (t(0), t(2), t(4))
    assert hm.images == ()
    assert hm.counts == ()


def test_heatmap_orders_incomparable_tags_the_same_for_any_input_order() -> None:
    images = [f"{API}:latest", f"{API}:1.2.0", f"{API}:main", f"{API}:1.10.0", f"{API}:1.9.1"]
    spans = [span(str(i), image, 0, 10) for i, image in enumerate(images)]
    first = heatmap(spans, start=t(0), end=t(10), step=300).images
    second = heatmap(list(reversed(spans)), start=t(0), end=t(10), step=300).images
    assert first == second
    semver = [image for image in first if image.rsplit(":", 1)[1][0].isdigit()]
    assert semver == [f"{API}:1.2.0", f"{API}:1.9.1", f"{API}:1.10.0"]


def test_heatmap_rejects_bad_grids() -> None:
    with pytest.raises(InputError):
        heatmap([], start=t(0), end=t(10), step=0)
    with pytest.raises(InputError):
        heatmap([], start=t(10), end=t(0), step=60)
    with pytest.raises(InputError, match="too many"):
        heatmap([], start=t(0), end=t(60 * 24 * 30), step=1)


def test_bucket_times_do_not_drift() -> None:
    times = bucket_times(0.0, 1.0, 0.1)
    assert len(times) == 11
    assert times[-1] == pytest.approx(1.0)
    assert all(x <= 1.0 for x in times)


@pytest.mark.parametrize(
    ("seconds", "step"),
    [
        (60, 30),
        (3600, 30),
        (6 * 3600, 2 * 60),
        (24 * 3600, 10 * 60),
        (7 * 86400, 3600),
        (15 * 86400, 2 * 3600),
        (365 * 86400, 2 * 86400),
        (10 * 365 * 86400, 30 * 86400),
        (30 * 365 * 86400, 60 * 86400),
    ],
)
def test_default_step(seconds: float, step: float) -> None:
    assert default_step(T0, T0 + seconds) == step
    assert seconds / step <= 200


def test_default_step_rejects_bad_input() -> None:
    with pytest.raises(InputError):
        default_step(T0, T0 - 1)
    with pytest.raises(InputError):
        default_step(T0, T0 + 60, target_points=0)


# --- distribution ------------------------------------------------------------------------


def test_distribution_at_an_instant() -> None:
    spans = [
        span("a", f"{NGINX}:1.25.3", 0, 100),
        span("b", f"{NGINX}:1.25.3", 0, 100, workload="api"),
        span("c", f"{NGINX}:1.25.3", 0, 100, workload="api"),
        span("d", f"{API}:1.0.0", 0, 100, workload="api", container="main"),
        span("e", f"{API}:1.0.0", 0, 100, digest=D1, workload="api", container="main"),
        span("f", f"{API}:0.9.0", 0, 40),  # ended before `at`
        span("g", f"{API}:1.1.0", 60, 100),  # starts after `at`
    ]
    assert distribution(spans, at=t(50)) == [
        VersionCount(f"{NGINX}:1.25.3", None, 3, ("prod/shop/Deployment/api",
                                                  "prod/shop/Deployment/web")),
        VersionCount(f"{API}:1.0.0", None, 1, ("prod/shop/Deployment/api",)),
        VersionCount(f"{API}:1.0.0", D1, 1, ("prod/shop/Deployment/api",)),
    ]  # fmt: skip
    at_40 = distribution(spans, at=t(40))  # covers() is inclusive at both ends
    assert [(v.image, v.digest, v.containers) for v in at_40] == [
        (f"{NGINX}:1.25.3", None, 3),
        (f"{API}:0.9.0", None, 1),
        (f"{API}:1.0.0", None, 1),
        (f"{API}:1.0.0", D1, 1),
    ]
    assert distribution(spans, at=t(101)) == []


# --- workloads ---------------------------------------------------------------------------


def test_workloads_summary_at_the_end_and_at_an_instant() -> None:
    spans = [
        span("a", f"{NGINX}:1.25.3", 0, 101),
        span("b", f"{NGINX}:1.25.4", 100, 200),
        span("c", f"{NGINX}:1.25.4", 150, 200),
        span("j", f"{API}:1.0.0", 10, 11, kind="CronJob", workload="report", inferred=True),
    ]
    assert workloads(spans) == [
        WorkloadSummary("prod", "shop", "CronJob", "report", "app", (), 0, t(10), t(11), None,
                        True),
        WorkloadSummary("prod", "shop", "Deployment", "web", "app", (f"{NGINX}:1.25.4",), 2,
                        t(0), t(200), t(100), False),
    ]  # fmt: skip
    assert workloads(spans, at=t(100.5)) == [
        WorkloadSummary("prod", "shop", "CronJob", "report", "app", (), 0, t(10), t(11), None,
                        True),
        WorkloadSummary("prod", "shop", "Deployment", "web", "app",
                        (f"{NGINX}:1.25.3", f"{NGINX}:1.25.4"), 2, t(0), t(100.5), t(100), False),
    ]  # fmt: skip
    assert [w.workload for w in workloads(spans, at=t(5))] == ["web"]
    assert workloads([]) == []


# --- history -----------------------------------------------------------------------------


def test_history_segments_with_rollback() -> None:
    spans = [
        span("a1", f"{NGINX}:1.25.3", 0, 610),
        span("a2", f"{NGINX}:1.25.3", 0, 300),
        span("a3", f"{NGINX}:1.25.3", 300, 620),  # churn inside the segment
        span("b1", f"{NGINX}:1.26.0", 600, 705),
        span("a4", f"{NGINX}:1.25.3", 700, 900),
        span("s", "docker.io/library/busybox:1.36", 0, 900, container="sidecar"),
    ]
    assert history(spans) == [
        HistoryEntry("app", f"{NGINX}:1.25.3", None, t(0), t(620), 3),  # a1, a2, a3 at 300
        HistoryEntry("app", f"{NGINX}:1.26.0", None, t(600), t(705), 1),
        HistoryEntry("app", f"{NGINX}:1.25.3", None, t(700), t(900), 1),
        HistoryEntry("sidecar", "docker.io/library/busybox:1.36", None, t(0), t(900), 1),
    ]


def test_history_of_nothing_is_empty() -> None:
    assert history([]) == []


# --- audit -------------------------------------------------------------------------------


def test_audit_clips_to_the_window() -> None:
    spans = [
        span("a1", f"{NGINX}:1.25.3", 0, 500),
        span("a2", f"{NGINX}:1.25.3", 0, 200),
        span("a3", f"{NGINX}:1.25.3", 250, 500),
        span("b1", f"{NGINX}:1.25.4", 450, 900),
        span("x", f"{API}:1.0.0", 0, 50, workload="gone"),  # ended before the window
        span("y", f"{API}:1.0.0", 0, 100, workload="edge"),  # ends on the window start
    ]
    assert audit(spans, start=t(100), end=t(600)) == [
        AuditEntry("prod", "shop", "Deployment", "edge", "app", f"{API}:1.0.0", None,
                   t(100), t(100), 1),
        AuditEntry("prod", "shop", "Deployment", "web", "app", f"{NGINX}:1.25.3", None,
                   t(100), t(500), 2),
        AuditEntry("prod", "shop", "Deployment", "web", "app", f"{NGINX}:1.25.4", None,
                   t(450), t(600), 1),
    ]  # fmt: skip


def test_audit_counts_concurrency_inside_the_window_only() -> None:
    spans = [span("a", f"{API}:1.0.0", 0, 10), span("b", f"{API}:1.0.0", 0, 10)]
    spans.append(span("c", f"{API}:1.0.0", 20, 30))
    assert [e.containers_max for e in audit(spans, start=t(15), end=t(40))] == [1]
    with pytest.raises(InputError):
        audit(spans, start=t(40), end=t(15))


# --- real tag histories (docker-library/official-images, read-only fixture) ---------------

OFFICIAL = FIXTURES / "official-images"


def _tag_lines(path: Path) -> list[list[str]]:
    """Tag groups of a library manifest: "Tags: a, b" blocks, or 2014-15's "tag: git://…"."""
    groups = []
    for line in path.read_text().splitlines():
        if line.startswith("Tags:"):
            groups.append([tag.strip() for tag in line[len("Tags:") :].split(",")])
        elif ": git://" in line and not line.startswith("#"):
            groups.append([line.split(":", 1)[0].strip()])
    return groups


def _nginx_history() -> list[Path]:
    files = sorted((OFFICIAL / "history").glob("nginx@*.txt"))
    if not files:
        pytest.skip("official-images fixture not present")
    return files


def test_heatmap_rows_follow_tag_order_on_real_nginx_tags() -> None:
    tags = {tag for f in _nginx_history() for line in _tag_lines(f) for tag in line}
    spans = [span(str(i), f"{NGINX}:{tag}", 0, 10) for i, tag in enumerate(sorted(tags))]
    rows = heatmap(spans, start=t(0), end=t(10), step=600).images
    assert len(rows) == len(tags)
    assert heatmap(spans[::-1], start=t(0), end=t(10), step=600).images == rows
    ordered = [row.rsplit(":", 1)[1] for row in rows]
    inversions = [
        (a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :] if compare_tags(a, b) == 1
    ]
    assert inversions == []


def test_twelve_years_of_nginx_mainline_are_upgrades() -> None:
    # Each yearly manifest's highest x.y.z tag is that year's mainline; the integer tuples
    # are an oracle independent of compare_tags.
    versions = []
    for f in _nginx_history():
        plain = [
            tag for line in _tag_lines(f) for tag in line if re.fullmatch(r"\d+\.\d+\.\d+", tag)
        ]
        versions.append(max(plain, key=lambda tag: tuple(int(p) for p in tag.split("."))))
    spans = [
        span(f"p{i}", f"{NGINX}:{v}", 1000 * i, 1000 * i + 1001) for i, v in enumerate(versions)
    ]
    end = t(1000 * len(versions) + 5000)
    # Another workload keeps the cluster reporting, so the last one's end is a removal.
    spans.append(
        Span("prod", "kube-system", "DaemonSet", "kp", "kp", "kp", "kp:1", None, t(0), end)
    )
    found = detect_changes(spans, since=t(0), until=end)
    numeric = [tuple(int(p) for p in v.split(".")) for v in versions]
    assert numeric == sorted(set(numeric))
    assert len(numeric) >= 12
    assert [(c.kind, c.from_image, c.to_image) for c in found[:-1]] == [
        (ChangeKind.UPGRADE, f"{NGINX}:{a}", f"{NGINX}:{b}")
        for a, b in itertools.pairwise(versions)
    ]
    assert found[-1].kind is ChangeKind.REMOVED
    assert all(c.finished == c.started + 60 for c in found[:-1])
