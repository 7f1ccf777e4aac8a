"""Failed and stuck rollouts from waits, on hand-built timelines (docs/analysis.md, "Attempts")."""

from __future__ import annotations

from imagetrail.analysis import detect_changes
from imagetrail.model import Change, ChangeKind, Span, Wait

T0 = 1_700_000_000.0
DAY = 1440
OLD = "registry.k8s.io/hpa-example:v1.0.0"
NEW = "registry.k8s.io/hpa-example:v9.9.9"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def t(minutes: float) -> float:
    return T0 + 60.0 * minutes


def span(pod: str, image: str, first: float, last: float, digest: str | None = D1) -> Span:
    return Span("kind", "scraper", "Deployment", "e2e-hpa", pod, "app", image, digest, t(first),
                t(last), pod_uid=f"uid-{pod}")  # fmt: skip


def wait(pod: str, image: str, first: float, last: float, reason: str) -> Wait:
    return Wait(span(pod, image, first, last, None), reason)


def running_old() -> list[Span]:
    return [span(f"a{i}", OLD, 0, DAY) for i in range(3)]


def changes(spans: list[Span], waits: list[Wait]) -> list[Change]:
    return detect_changes(spans, since=t(0), until=t(DAY), waits=waits)


def test_a_tag_that_does_not_exist_is_one_failed_rollout() -> None:
    waits = [
        wait("b1", NEW, 600, 601, "ErrImagePull"),
        wait("b1", NEW, 601.5, 625, "ImagePullBackOff"),
    ]
    [c] = changes(running_old(), waits)
    assert (c.kind, c.from_image, c.to_image, c.to_digest) == (ChangeKind.UPGRADE, OLD, NEW, None)
    assert (c.started, c.finished, c.ended) == (t(600), None, t(625))
    assert c.state == "failed"
    assert c.reasons == ("ErrImagePull", "ImagePullBackOff")
    assert (c.pods, c.pods_ran) == (1, 0)


def test_an_attempt_still_waiting_at_the_end_is_stuck() -> None:
    [c] = changes(running_old(), [wait("b1", NEW, DAY - 30, DAY, "ImagePullBackOff")])
    assert (c.state, c.ended, c.cut_short) == ("stuck", None, None)


def test_a_config_error_fixed_in_place_is_one_slower_rollout() -> None:
    spans = [span(f"a{i}", OLD, 0, 612 + i) for i in range(3)]
    spans += [span(f"b{i}", NEW, 610 + i, DAY, D2) for i in range(3)]
    waits = [wait(f"b{i}", NEW, 600, 610 + i, "CreateContainerConfigError") for i in range(3)]
    [c] = changes(spans, waits)
    assert (c.kind, c.state, c.started, c.finished) == (
        ChangeKind.UPGRADE, "finished", t(610), t(614)
    )  # fmt: skip
    assert c.waited == 600.0
    assert c.reasons == ("CreateContainerConfigError",)
    assert (c.pods, c.pods_ran) == (3, 3)


def test_a_crash_looping_release_rolled_back_failed() -> None:
    spans = [*running_old()[:2], span("a2", OLD, 0, 601)]
    spans += [span("b1", NEW, 600, 630, D2)]  # crash-looping: it restarts, so it "runs"
    spans += [span("c1", OLD, 630, DAY)]  # kubectl rollout undo
    waits = [wait("b1", NEW, 600.5, 630, "CrashLoopBackOff")]
    upgrade, rollback = changes(spans, waits)
    assert (upgrade.kind, upgrade.state, upgrade.ended) == (ChangeKind.UPGRADE, "failed", t(630))
    assert upgrade.reasons == ("CrashLoopBackOff",)
    assert (upgrade.pods, upgrade.pods_ran) == (1, 0)
    assert (rollback.kind, rollback.state) == (ChangeKind.ROLLBACK, "finished")


def test_a_rollout_that_partly_ran_says_how_many_pods_did() -> None:
    spans = running_old()
    spans += [span("b1", NEW, 600, 640, D2)]
    spans += [span("c1", OLD, 640, DAY)]
    waits = [wait(f"b{i}", NEW, 601, 640, "ImagePullBackOff") for i in (2, 3)]
    upgrade, _ = changes(spans, waits)
    assert upgrade.state == "aborted"
    assert (upgrade.pods, upgrade.pods_ran) == (3, 1)
    assert upgrade.reasons == ("ImagePullBackOff",)


def test_the_usual_container_creating_is_no_attempt() -> None:
    spans = [span(f"a{i}", OLD, 0, 612) for i in range(3)]
    spans += [span(f"b{i}", NEW, 610, DAY, D2) for i in range(3)]
    waits = [wait(f"b{i}", NEW, 609.5, 610, "ContainerCreating") for i in range(3)]
    [c] = changes(spans, waits)
    assert (c.reasons, c.pods, c.waited) == ((), None, None)


def test_the_running_versions_own_restarts_are_no_attempt() -> None:
    assert changes(running_old(), [wait("a1", OLD, 300, 330, "CrashLoopBackOff")]) == []


def test_a_new_workload_that_never_ran_failed_to_be_added() -> None:
    # Another workload keeps the cluster reporting: the attempt's end is not its silence.
    alive = Span("kind", "kube-system", "DaemonSet", "kp", "kp", "kp", "kp:1", None, t(0), t(DAY))
    [c] = changes([alive], [wait("b1", NEW, 600, 700, "ImagePullBackOff")])
    assert (c.kind, c.state, c.from_image) == (ChangeKind.ADDED, "failed", None)


def test_a_pod_first_scraped_just_after_the_rollout_finished_ran_it() -> None:
    spans = [span(f"a{i}", OLD, 0, 612) for i in range(2)]
    spans += [span(f"b{i}", NEW, 610, DAY, D2) for i in range(2)]
    spans += [span("b2", NEW, 612.5, DAY, D2)]  # started before a1 went, seen 30 s after
    waits = [wait(f"b{i}", NEW, 600, 610, "CreateContainerConfigError") for i in range(3)]
    [c] = changes(spans, waits)
    assert (c.state, c.pods, c.pods_ran) == ("finished", 3, 3)
