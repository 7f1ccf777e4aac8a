"""Change detection on hand-built timelines, one test per edge case, exact expectations."""

from __future__ import annotations

from typing import TypedDict, Unpack

import pytest

from imagetrail.analysis import classify, current_version, detect_changes, segments
from imagetrail.errors import InputError
from imagetrail.model import Change, ChangeKind, Span

T0 = 1_700_000_000.0
DAY = 1440  # minutes
NGINX = "docker.io/library/nginx"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


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
    cluster: str = "prod",
) -> Span:
    """A span with times in minutes after T0."""
    return Span(
        cluster, namespace, kind, workload, pod, container, image, digest, t(first), t(last)
    )


def alive(until: float = DAY) -> Span:
    """Another workload of the same cluster that runs throughout: the cluster still reports."""
    return span(
        "kp", "registry.k8s.io/kube-proxy:v1.31.0", 0, until, kind="DaemonSet", workload="kp"
    )


class _Options(TypedDict, total=False):
    """detect_changes' tuning keywords a test may override."""

    tolerance: float
    removed_after: float
    forget_after: float


def changes(spans: list[Span], *, until: float = DAY, **kwargs: Unpack[_Options]) -> list[Change]:
    return detect_changes(spans, since=t(0), until=t(until), **kwargs)


def brief(found: list[Change]) -> list[tuple[str, str | None, str | None, float, float | None]]:
    """(kind, from, to, started minute, finished minute) for readable assertions."""
    return [
        (
            c.kind.value,
            c.from_image,
            c.to_image,
            (c.started - T0) / 60,
            None if c.finished is None else (c.finished - T0) / 60,
        )
        for c in found
    ]


def test_single_version_forever_is_no_change() -> None:
    assert changes([span("a", f"{NGINX}:1.25.3", 0, DAY)]) == []


def test_pod_churn_without_version_change_is_no_change() -> None:
    spans = [
        span("a", f"{NGINX}:1.25.3", 0, 100),
        span("b", f"{NGINX}:1.25.3", 100.5, 300),
        span("c", f"{NGINX}:1.25.3", 290, DAY),
        span("d", f"{NGINX}:1.25.3", 0, 50),
    ]
    assert changes(spans) == []


def test_rolling_update_with_overlap() -> None:
    spans = [
        span("a1", f"{NGINX}:1.25.3", 0, 500),
        span("a2", f"{NGINX}:1.25.3", 0, 505),
        span("b1", f"{NGINX}:1.25.4", 498, DAY),
        span("b2", f"{NGINX}:1.25.4", 502, DAY),
    ]
    found = changes(spans)
    assert found == [
        Change(
            "prod", "shop", "Deployment", "web", "app",
            f"{NGINX}:1.25.3", None, f"{NGINX}:1.25.4", None,
            ChangeKind.UPGRADE, t(498), t(505),
        )
    ]  # fmt: skip


def test_downgrade() -> None:
    spans = [span("a", f"{NGINX}:1.26.0", 0, 400), span("b", f"{NGINX}:1.25.4", 399, DAY)]
    assert brief(changes(spans)) == [("downgrade", f"{NGINX}:1.26.0", f"{NGINX}:1.25.4", 399, 400)]


def test_failed_rollout_then_rollback() -> None:
    spans = [
        span("a1", f"{NGINX}:1.25.3", 0, DAY),  # old pods keep running: the rollout is stuck
        span("a2", f"{NGINX}:1.25.3", 0, DAY),
        span("b1", f"{NGINX}:1.26.0", 600, 720),  # crash-looping new pod
        span("a3", f"{NGINX}:1.25.3", 700, DAY),  # `rollout undo` starts an old pod again
    ]
    assert brief(changes(spans)) == [
        ("upgrade", f"{NGINX}:1.25.3", f"{NGINX}:1.26.0", 600, None),
        ("rollback", f"{NGINX}:1.26.0", f"{NGINX}:1.25.3", 700, 720),
    ]


def test_reupgrade_after_rollback_is_an_upgrade() -> None:
    spans = [
        span("a1", f"{NGINX}:1.25.3", 0, 610),
        span("b1", f"{NGINX}:1.26.0", 600, 705),
        span("a2", f"{NGINX}:1.25.3", 700, 905),
        span("b2", f"{NGINX}:1.26.0", 900, DAY),
    ]
    assert brief(changes(spans)) == [
        ("upgrade", f"{NGINX}:1.25.3", f"{NGINX}:1.26.0", 600, 610),
        ("rollback", f"{NGINX}:1.26.0", f"{NGINX}:1.25.3", 700, 705),
        ("upgrade", f"{NGINX}:1.25.3", f"{NGINX}:1.26.0", 900, 905),
    ]


def test_return_to_an_incomparable_version_is_a_rollback() -> None:
    spans = [
        span("a1", "ghcr.io/acme/api:main", 0, 101),
        span("b1", "ghcr.io/acme/api:feature-x", 100, 201),
        span("a2", "ghcr.io/acme/api:main", 200, DAY),
    ]
    assert [c.kind for c in changes(spans)] == [ChangeKind.OTHER, ChangeKind.ROLLBACK]


def test_tag_repush() -> None:
    spans = [
        span("a1", f"{NGINX}:1.25", 0, 305, digest=D1),
        span("b1", f"{NGINX}:1.25", 300, DAY, digest=D2),
    ]
    found = changes(spans)
    assert [(c.kind, c.from_digest, c.to_digest, c.finished) for c in found] == [
        (ChangeKind.TAG_REPUSH, D1, D2, t(305))
    ]


def test_repush_back_to_an_old_digest_is_still_a_repush() -> None:
    spans = [
        span("a", f"{NGINX}:1.25", 0, 100, digest=D1),
        span("b", f"{NGINX}:1.25", 100, 200, digest=D2),
        span("c", f"{NGINX}:1.25", 200, DAY, digest=D1),
    ]
    assert [c.kind for c in changes(spans)] == [ChangeKind.TAG_REPUSH, ChangeKind.TAG_REPUSH]


def test_digest_appearing_on_the_same_tag_is_other() -> None:
    # cAdvisor knows no digest, kube-state-metrics does: not a re-push, not comparable.
    spans = [span("a", f"{NGINX}:1.25", 0, 100), span("b", f"{NGINX}:1.25", 100, DAY, digest=D1)]
    assert [c.kind for c in changes(spans)] == [ChangeKind.OTHER]


def test_recreate_strategy_finishes_when_it_starts() -> None:
    spans = [
        span("a1", f"{NGINX}:1.25.3", 0, 600),
        span("a2", f"{NGINX}:1.25.3", 0, 600),
        span("b1", f"{NGINX}:1.25.4", 602, DAY),
        span("b2", f"{NGINX}:1.25.4", 602, DAY),
    ]
    assert brief(changes(spans)) == [("upgrade", f"{NGINX}:1.25.3", f"{NGINX}:1.25.4", 602, 602)]


def test_cronjob_runs_with_gaps_are_not_added_or_removed() -> None:
    runs = [span(f"job-{m}", "ghcr.io/acme/report:2.0.1", m, m + 0.5, kind="CronJob")
            for m in range(0, 601, 60)]  # fmt: skip
    assert changes(runs) == []


def test_cronjob_version_change_between_runs() -> None:
    runs = [
        span("r1", "ghcr.io/acme/report:2.0.1", 0, 1, kind="CronJob"),
        span("r2", "ghcr.io/acme/report:2.0.1", 60, 61, kind="CronJob"),
        span("r3", "ghcr.io/acme/report:2.1.0", 120, 121, kind="CronJob"),
    ]
    assert brief(changes(runs)) == [
        ("upgrade", "ghcr.io/acme/report:2.0.1", "ghcr.io/acme/report:2.1.0", 120, 120)
    ]


def test_jobs_are_never_added_or_removed() -> None:
    assert changes([span("j", "ghcr.io/acme/migrate:5", 100, 110, kind="Job")]) == []
    assert changes([span("j", "ghcr.io/acme/report:5", 100, 110, kind="CronJob")]) == []
    # A Deployment is added and removed while its cluster keeps reporting (kube-proxy runs on).
    found = changes([span("j", "ghcr.io/acme/x:5", 100, 110), alive()])
    assert [c.kind for c in found] == [ChangeKind.ADDED, ChangeKind.REMOVED]


def test_workload_added_mid_window() -> None:
    spans = [span("a", f"{NGINX}:1.25.3", 300, DAY), span("b", f"{NGINX}:1.25.3", 300, DAY)]
    assert changes(spans) == [
        Change(
            "prod", "shop", "Deployment", "web", "app",
            None, None, f"{NGINX}:1.25.3", None, ChangeKind.ADDED, t(300), t(300),
        )
    ]  # fmt: skip


def test_added_needs_more_than_the_tolerance() -> None:
    # A first sighting within `tolerance` of the window start is the initial state.
    assert changes([span("a", f"{NGINX}:1.25.3", 0.9, DAY)]) == []
    assert brief(changes([span("a", f"{NGINX}:1.25.3", 1.1, DAY)])) == [
        ("added", None, f"{NGINX}:1.25.3", 1.1, 1.1)
    ]


def test_workload_removed_mid_window() -> None:
    spans = [span("a", f"{NGINX}:1.25.3", 0, 600), span("b", f"{NGINX}:1.25.4", 300, 610), alive()]
    assert brief(changes(spans)) == [
        ("upgrade", f"{NGINX}:1.25.3", f"{NGINX}:1.25.4", 300, 600),
        ("removed", f"{NGINX}:1.25.4", None, 610, 610),
    ]


def test_old_version_outliving_the_removal_point_is_superseded_by_it() -> None:
    # The removal is the next change; the last 1.25.3 container ends with it, not before it:
    # the upgrade never finished, and it was over when the workload went.
    spans = [span("a", f"{NGINX}:1.25.3", 0, 700), span("b", f"{NGINX}:1.25.4", 300, 610), alive()]
    found = changes(spans)
    assert brief(found) == [
        ("upgrade", f"{NGINX}:1.25.3", f"{NGINX}:1.25.4", 300, None),
        ("removed", f"{NGINX}:1.25.4", None, 700, 700),
    ]
    assert (found[0].state, found[0].ended) == ("superseded", t(700))


def test_removed_needs_removed_after() -> None:
    spans = [span("a", f"{NGINX}:1.25.3", 0, DAY - 59), alive()]
    assert changes(spans) == []
    assert brief(changes(spans, removed_after=30 * 60)) == [
        ("removed", f"{NGINX}:1.25.3", None, DAY - 59, DAY - 59)
    ]


def test_latest_tags_are_other() -> None:
    spans = [
        span("a", "ghcr.io/acme/api:latest", 0, 101),
        span("b", "ghcr.io/acme/api:1.4.0", 100, DAY),
    ]
    assert [c.kind for c in changes(spans)] == [ChangeKind.OTHER]


def test_latest_repushed_is_a_repush() -> None:
    spans = [
        span("a", "ghcr.io/acme/api:latest", 0, 101, digest=D1),
        span("b", "ghcr.io/acme/api:latest", 100, DAY, digest=D2),
    ]
    assert [c.kind for c in changes(spans)] == [ChangeKind.TAG_REPUSH]


def test_digest_only_images_are_other() -> None:
    spans = [
        span("a", f"{NGINX}@{D1}", 0, 101, digest=D1),
        span("b", f"{NGINX}@{D2}", 100, DAY, digest=D2),
    ]
    assert brief(changes(spans)) == [("other", f"{NGINX}@{D1}", f"{NGINX}@{D2}", 100, 101)]


def test_unparseable_display_is_other() -> None:
    spans = [span("a", D1, 0, 101), span("b", D2, 100, DAY)]
    assert [c.kind for c in changes(spans)] == [ChangeKind.OTHER]


def test_return_to_another_repository_is_a_rollback() -> None:
    # Tags of different repositories are not comparable, so "not newer", even when the
    # numbers alone would say 1.26.0 > 1.25.3.
    spans = [
        span("a", "quay.io/nginx/nginx-unprivileged:1.26.0", 0, 101),
        span("b", f"{NGINX}:1.25.3", 100, 201),
        span("c", "quay.io/nginx/nginx-unprivileged:1.26.0", 200, DAY),
    ]
    assert [c.kind for c in changes(spans)] == [ChangeKind.OTHER, ChangeKind.ROLLBACK]


def test_different_repository_is_other() -> None:
    spans = [
        span("a", f"{NGINX}:1.25.3", 0, 101),
        span("b", "quay.io/nginx/nginx-unprivileged:1.26.0", 100, DAY),
    ]
    assert [c.kind for c in changes(spans)] == [ChangeKind.OTHER]


def test_daemonset_node_by_node() -> None:
    spans = [
        span("n1-a", "registry.k8s.io/kube-proxy:v1.30.2", 0, 500, kind="DaemonSet"),
        span("n2-a", "registry.k8s.io/kube-proxy:v1.30.2", 0, 510, kind="DaemonSet"),
        span("n3-a", "registry.k8s.io/kube-proxy:v1.30.2", 0, 520, kind="DaemonSet"),
        span("n1-b", "registry.k8s.io/kube-proxy:v1.31.0", 501, DAY, kind="DaemonSet"),
        span("n2-b", "registry.k8s.io/kube-proxy:v1.31.0", 511, DAY, kind="DaemonSet"),
        span("n3-b", "registry.k8s.io/kube-proxy:v1.31.0", 521, DAY, kind="DaemonSet"),
    ]
    assert brief(changes(spans)) == [
        (
            "upgrade",
            "registry.k8s.io/kube-proxy:v1.30.2",
            "registry.k8s.io/kube-proxy:v1.31.0",
            501,
            520,
        )
    ]


def test_rollout_still_running_at_the_end_is_unfinished() -> None:
    spans = [span("a", f"{NGINX}:1.25.3", 0, DAY), span("b", f"{NGINX}:1.25.4", 1000, DAY)]
    assert brief(changes(spans)) == [("upgrade", f"{NGINX}:1.25.3", f"{NGINX}:1.25.4", 1000, None)]
    # The old version ended just inside the tolerance of `until`: may still be running.
    spans[0] = span("a", f"{NGINX}:1.25.3", 0, DAY - 0.5)
    assert changes(spans)[0].finished is None
    spans[0] = span("a", f"{NGINX}:1.25.3", 0, DAY - 1.5)
    assert changes(spans)[0].finished == t(DAY - 1.5)


def test_old_pod_outliving_the_next_change_leaves_finished_open() -> None:
    spans = [
        span("a", f"{NGINX}:1.25.3", 0, 800),
        span("b", f"{NGINX}:1.25.4", 100, 300),
        span("c", f"{NGINX}:1.25.5", 200, DAY),
    ]
    assert brief(changes(spans)) == [
        ("upgrade", f"{NGINX}:1.25.3", f"{NGINX}:1.25.4", 100, None),
        ("upgrade", f"{NGINX}:1.25.4", f"{NGINX}:1.25.5", 200, 300),
    ]


def test_window_filter_and_order_across_workloads() -> None:
    spans = [
        span("a", f"{NGINX}:1.25.3", 0, 101, workload="web"),
        span("b", f"{NGINX}:1.25.4", 100, DAY, workload="web"),
        span("c", f"{NGINX}:1.25.3", 0, 101, workload="api"),
        span("d", f"{NGINX}:1.25.4", 100, 201, workload="api"),
        span("e", f"{NGINX}:1.25.5", 200, DAY, workload="api"),
        span("f", f"{NGINX}:1.25.3", 0, 51, workload="old"),
        span("g", f"{NGINX}:1.25.4", 50, DAY, workload="old"),
    ]
    found = detect_changes(spans, since=t(60), until=t(DAY))
    assert [(c.workload, (c.started - T0) / 60) for c in found] == [
        ("api", 100),
        ("web", 100),
        ("api", 200),
    ]
    assert detect_changes(spans, since=t(60), until=t(150))[-1].started == t(100)
    assert [c.started for c in detect_changes(spans, since=t(150), until=t(199))] == []


def test_containers_of_one_workload_are_separate_keys() -> None:
    spans = [
        span("p1", f"{NGINX}:1.25.3", 0, DAY, container="proxy"),
        span("p1", "ghcr.io/acme/api:1.0.0", 0, 101, container="app"),
        span("p2", "ghcr.io/acme/api:1.1.0", 100, DAY, container="app"),
        span("p2", f"{NGINX}:1.25.3", 100, DAY, container="proxy"),
    ]
    assert [(c.container, c.kind) for c in changes(spans)] == [("app", ChangeKind.UPGRADE)]


def test_tie_keeps_the_current_version() -> None:
    spans = [
        span("a", f"{NGINX}:1.25.3", 0, DAY),
        span("b", f"{NGINX}:1.25.3", 300, DAY),
        span("c", f"{NGINX}:1.25.4", 300, DAY),
    ]
    assert changes(spans) == []
    assert current_version(spans, t(400)) == (f"{NGINX}:1.25.3", None)


def test_tie_between_two_new_versions_is_decided_by_version_order() -> None:
    spans = [
        span("a", f"{NGINX}:1.25.3", 0, DAY),
        span("c", f"{NGINX}:1.25.5", 300, DAY),
        span("b", f"{NGINX}:1.25.4", 300, DAY),
    ]
    assert [c.to_image for c in changes(spans)] == [f"{NGINX}:1.25.4"]
    assert [s.image for s in segments(spans)] == [f"{NGINX}:1.25.3", f"{NGINX}:1.25.4"]


def test_current_version_before_the_first_span_is_none() -> None:
    spans = [span("a", f"{NGINX}:1.25.3", 10, 20)]
    assert current_version(spans, t(5)) is None
    assert current_version(spans, t(30)) == (f"{NGINX}:1.25.3", None)


@pytest.mark.parametrize(
    ("old", "new", "seen", "kind"),
    [
        ((f"{NGINX}:1.25", D1), (f"{NGINX}:1.25", D2), True, ChangeKind.TAG_REPUSH),
        ((f"{NGINX}:1.26", None), (f"{NGINX}:1.25", None), True, ChangeKind.ROLLBACK),
        ((f"{NGINX}:1.25", None), (f"{NGINX}:1.26", None), True, ChangeKind.UPGRADE),
        ((f"{NGINX}:1.26", None), (f"{NGINX}:1.25", None), False, ChangeKind.DOWNGRADE),
        ((f"{NGINX}:1.25", D1), (f"{NGINX}:1.25", None), False, ChangeKind.OTHER),
        ((f"{NGINX}:1.25", D1), (f"{NGINX}:1.25", None), True, ChangeKind.ROLLBACK),
    ],
)
def test_classify(
    old: tuple[str, str | None], new: tuple[str, str | None], seen: bool, kind: ChangeKind
) -> None:
    assert classify(old, new, was_current_before=seen) is kind


def test_bad_arguments_are_input_errors() -> None:
    with pytest.raises(InputError):
        detect_changes([], since=t(10), until=t(0))
    with pytest.raises(InputError):
        detect_changes([], since=t(0), until=t(10), tolerance=-1)
    with pytest.raises(InputError):
        detect_changes([], since=float("nan"), until=t(10))
