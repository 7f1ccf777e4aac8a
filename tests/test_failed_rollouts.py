"""Failed and stuck rollouts (issue 18) for every consumer of changes: the exporter's state and
series, DORA, the impact verdict, and the `changes` table's cell.

The changes are built directly, as :mod:`imagetrail.analysis.attempts` makes them: a failed
attempt that never ran is a change from the version current at its start, ``to_digest`` None,
``started`` its first wait, ``finished`` None, ``cut_short`` FAILED and ``ended`` its last wait;
a stuck one has neither ``cut_short`` nor ``ended``, and ``pods_ran`` 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from imagetrail import settings as settings_mod
from imagetrail.analysis.current import current_state, failing_rollouts
from imagetrail.analysis.dora import dora
from imagetrail.analysis.verdict import Windows, assess
from imagetrail.model import Change, ChangeKind, CutShort, EventCount, Impact, Span
from imagetrail.service.impact import ImpactRunner, is_final
from imagetrail.service.query import QueryContext
from imagetrail.service.shapes import impact_json
from imagetrail.sources.signals import events_expr
from imagetrail.web.exporter import _failing_metric
from servers import backfill_prometheus_tsdb, start_prometheus

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
H = 3600.0
OLD, NEW = "registry.k8s.io/hpa-example:v1", "registry.k8s.io/hpa-example:v9.9.9"


def change(
    kind: ChangeKind = ChangeKind.UPGRADE,
    started: float = T0,
    finished: float | None = T0 + 120,
    *,
    from_image: str | None = OLD,
    to_image: str | None = NEW,
    workload: str = "e2e-hpa",
    **extra: object,
) -> Change:
    base = Change(
        "kind", "scraper", "Deployment", workload, "hpa", from_image, None, to_image, None,
        kind, started, finished,
    )  # fmt: skip
    return replace(base, **extra)  # type: ignore[arg-type]


# The story: v9.9.9 waits in ImagePullBackOff for 25 minutes, then the rollout is undone.
FAILED = change(
    finished=None,
    cut_short=CutShort.FAILED,
    ended=T0 + 1500,
    reasons=("ErrImagePull", "ImagePullBackOff"),
    pods=1,
    pods_ran=0,
)
STUCK = replace(FAILED, cut_short=None, ended=None)


def test_the_states() -> None:
    assert (FAILED.state, FAILED.settled) == ("failed", T0 + 1500)
    assert (STUCK.state, STUCK.settled) == ("stuck", None)


# -- the exporter ---------------------------------------------------------------------------------
def span(
    image: str, first: float, last: float, pod: str = "hpa-a", workload: str = "e2e-hpa"
) -> Span:
    return Span("kind", "scraper", "Deployment", workload, pod, "hpa", image, None, first, last)


def test_a_stuck_rollout_is_failing_and_in_progress() -> None:
    spans = [span(OLD, T0 - H, T0 + H)]
    [state] = current_state(spans, [STUCK], at=T0 + H, window=86400.0)
    assert state.rollout_in_progress
    [f] = failing_rollouts([STUCK], at=T0 + H)
    assert f.key == ("kind", "scraper", "Deployment", "e2e-hpa", "hpa")
    assert f.reasons == ("ErrImagePull", "ImagePullBackOff")


@pytest.mark.parametrize(
    "over",
    [FAILED, replace(STUCK, finished=T0 + 1600, pods_ran=1)],
    ids=["failed", "finished-after-waiting"],
)
def test_a_rollout_that_is_over_is_not_failing(over: Change) -> None:
    spans = [span(OLD, T0 - H, T0 + H)]
    [state] = current_state(spans, [over], at=T0 + H, window=86400.0)
    assert not state.rollout_in_progress
    assert failing_rollouts([over], at=T0 + H) == []


def test_only_the_newest_change_counts() -> None:
    later = change(started=T0 + 1800, finished=T0 + 1900, from_image=OLD, to_image=OLD + "-fix")
    assert failing_rollouts([STUCK, later], at=T0 + H) == []
    assert failing_rollouts([STUCK, later], at=T0 + 1000) != []  # before the later one


def test_a_brand_new_workload_that_runs_nothing_still_fails() -> None:
    first = replace(STUCK, kind=ChangeKind.ADDED, from_image=None, workload="brand-new")
    spans = [span(OLD, T0 - H, T0 + H)]  # another workload runs; this one runs nothing
    assert [s.key[3] for s in current_state(spans, [first], at=T0 + H, window=86400.0)] == [
        "e2e-hpa"
    ]
    [f] = failing_rollouts([first], at=T0 + H)
    assert f.key[3] == "brand-new"


class _One(Collector):
    def __init__(self, changes: list[Change]) -> None:
        self.changes = changes

    def collect(self):  # type: ignore[no-untyped-def]
        yield _failing_metric(failing_rollouts(self.changes, at=T0 + H))


def scrape(changes: list[Change]) -> list[tuple[dict[str, str], float]]:
    registry = CollectorRegistry()
    registry.register(_One(changes))
    text = generate_latest(registry).decode()
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "imagetrail_rollout_failing"
    ]


def test_the_series_one_per_reason_with_hostile_labels() -> None:
    hostile = replace(STUCK, workload='w"\n{{ $value }}', reasons=('Err"\\x\n', "ImagePullBackOff"))
    samples = scrape([hostile, replace(FAILED, workload="other")])
    assert samples == [
        (
            {
                "cluster": "kind",
                "namespace": "scraper",
                "workload_kind": "Deployment",
                "workload": 'w"\n{{ $value }}',
                "container": "hpa",
                "reason": reason,
            },
            1.0,
        )
        for reason in ('Err"\\x\n', "ImagePullBackOff")
    ]
    assert scrape([FAILED]) == []


# -- DORA -----------------------------------------------------------------------------------------
def figures(changes: list[Change]) -> tuple[int, int, int, tuple[float, ...]]:
    [fig] = dora(changes, start=T0 - H, end=T0 + 23 * H)
    return fig.deployments, fig.failures, fig.open_failures, fig.restore_seconds


def test_a_failed_attempt_is_a_failed_deployment_restored_when_its_pods_went_away() -> None:
    # The old version ran throughout; one version runs again when the failing pod went away.
    assert figures([FAILED]) == (1, 1, 0, (1500.0,))
    # A later, unrelated deployment does not move the restore.
    later = change(started=T0 + 5 * H, finished=T0 + 5 * H + 60, from_image=OLD,
                   to_image=OLD + "-2")  # fmt: skip
    assert figures([FAILED, later]) == (2, 1, 0, (1500.0,))


def test_a_stuck_rollout_is_an_open_failure() -> None:
    assert figures([STUCK]) == (1, 1, 1, ())


def test_a_crash_looping_release_rolled_back_is_restored_by_the_rollback() -> None:
    # The new version became current but only crash-looped: cut short (failed) when the
    # rollback started, restored when the rollback finished.
    crashing = change(
        finished=None, cut_short=CutShort.FAILED, ended=T0 + 600, to_digest="sha256:" + "c" * 64,
        reasons=("CrashLoopBackOff",), pods=3, pods_ran=0,
    )  # fmt: skip
    back = change(ChangeKind.ROLLBACK, T0 + 600, T0 + 900, from_image=NEW, to_image=OLD)
    assert figures([crashing, back]) == (2, 1, 0, (900.0,))


def test_a_rollout_that_waited_then_finished_is_no_failure() -> None:
    fixed = change(finished=T0 + 720, reasons=("CreateContainerConfigError",), pods=1,
                   pods_ran=1, waited=600.0)  # fmt: skip
    assert figures([fixed]) == (1, 0, 0, ())


# -- impact ---------------------------------------------------------------------------------------
def test_a_failed_attempt_gets_a_final_verdict_naming_the_failure() -> None:
    verdict = assess(FAILED, Windows((T0 - H, T0), None), [])
    assert verdict.verdict == "insufficient-data"
    assert verdict.reason.startswith("the new version never ran: ErrImagePull, ImagePullBackOff")
    assert is_final(verdict, data_end=T0 + 9 * H)


def test_a_stuck_attempt_gets_a_verdict_that_is_not_final() -> None:
    verdict = assess(STUCK, Windows((T0 - H, T0), None), [])
    assert verdict.verdict == "insufficient-data"
    assert verdict.reason == "the new version is not running yet: ErrImagePull, ImagePullBackOff"
    assert not is_final(verdict, data_end=T0 + 9 * H)


# -- impact events against a real Prometheus ------------------------------------------------------
EVENT_POD = 'api-new"\n{x}'  # a hostile pod name: escaped in the selector, still matched
Value = Callable[[float], "float | None"]


def _om_labels(pod: str, **extra: str) -> str:
    pairs = {"cluster": "prod", "namespace": "shop", "pod": pod, "container": "api", **extra}
    quoted = (
        (k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
        for k, v in pairs.items()
    )
    return ",".join(f'{k}="{v}"' for k, v in quoted)


def _openmetrics(t: float) -> str:
    """Series of one workload container around a change at ``t`` (finished at ``t + 600``):
    before, an old pod restarts after an OOM kill and another shows an old Error (no restart
    in the window: not news); after, the new pod crash-loops (Error); a pod of another
    workload waits in ImagePullBackOff throughout (not this change's)."""
    grid = [t - 4200 + 30 * k for k in range(320)]
    out: list[str] = []
    typed: set[str] = set()

    def add(name: str, labels: str, value: Value) -> None:
        if name not in typed:
            typed.add(name)
            out.append(f"# TYPE {name} gauge")
        for ts in grid:
            v = value(ts)
            if v is not None:
                out.append(f"{name}{{{labels}}} {v} {ts:.0f}")

    def old(v: float) -> Value:
        return lambda ts: v if ts < t + 300 else None

    restarts = "kube_pod_container_status_restarts_total"
    reason = "kube_pod_container_status_last_terminated_reason"
    waiting = "kube_pod_container_status_waiting_reason"
    # One family's series must be together: restarts first, then reasons, then waiting.
    add(
        restarts,
        _om_labels("api-old-1"),
        lambda ts: (2.0 if ts >= t - 1800 else 0.0) if ts < t + 300 else None,
    )
    add(restarts, _om_labels("api-old-2"), old(1.0))
    add(restarts, _om_labels(EVENT_POD), lambda ts: float((ts - t) // 300) if ts >= t else None)
    add(reason, _om_labels("api-old-1", reason="OOMKilled"), old(1.0))
    add(reason, _om_labels("api-old-2", reason="Error"), old(1.0))
    add(reason, _om_labels(EVENT_POD, reason="Error"), lambda ts: 1.0 if ts >= t + 900 else None)
    add(
        waiting,
        _om_labels(EVENT_POD, reason="CrashLoopBackOff"),
        lambda ts: 1.0 if ts >= t + 900 else None,
    )
    add(waiting, _om_labels("other-1", reason="ImagePullBackOff"), lambda ts: 1.0)
    return "\n".join(out) + "\n# EOF\n"


@pytest.mark.slow
def test_impact_events_from_a_real_prometheus(tmp_path: Path) -> None:
    t = (time.time() // 3600 - 48) * 3600.0  # two days ago: well inside the retention
    (tmp_path / "events.om").write_text(_openmetrics(t))
    backfill_prometheus_tsdb([tmp_path / "events.om"], tmp_path / "tsdb")
    server = start_prometheus(tmp_path / "tsdb")
    try:
        s = settings_mod.load(
            {"prometheus_url": server.url}, environ={}, config_path=_empty(tmp_path)
        )
        runner = ImpactRunner(QueryContext(s))
        upgrade = change(started=t, finished=t + 600, workload="api")
        upgrade = replace(upgrade, cluster="prod", namespace="shop", container="api")
        spans = [
            Span("prod", "shop", "Deployment", "api", pod, "api", image, None, a, b)
            for pod, image, a, b in (
                ("api-old-1", OLD, t - 4200, t + 300),
                ("api-old-2", OLD, t - 4200, t + 300),
                (EVENT_POD, NEW, t, t + 5300),
            )
        ]
        attempt = replace(FAILED, cluster="prod", namespace="shop", workload="api", container="api",
                          started=t + 5400, ended=t + 5500)  # fmt: skip
        changes = [upgrade, attempt]
        plans = runner.plan(changes, spans, changes, data_end=t + 5400)
        impact, failed = runner.judge(plans)
    finally:
        server.stop()
    assert impact.after is not None
    assert impact.events == (
        EventCount("terminated", "Error", 0, 1),  # the old Error did not restart: not counted
        EventCount("terminated", "OOMKilled", 1, 0),
        EventCount("waiting", "CrashLoopBackOff", 0, 1),
    )
    assert impact_json(impact)["events"] == [
        {"state": "terminated", "reason": "Error", "before": 0, "after": 1},
        {"state": "terminated", "reason": "OOMKilled", "before": 1, "after": 0},
        {"state": "waiting", "reason": "CrashLoopBackOff", "before": 0, "after": 1},
    ]
    # The attempt that never ran: events before it (the crash-looping pod), no after-window.
    assert failed.reason.startswith("the new version never ran: ErrImagePull, ImagePullBackOff")
    assert failed.after is None
    assert failed.events == (
        EventCount("terminated", "Error", 1, None),
        EventCount("waiting", "CrashLoopBackOff", 1, None),
    )


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    return path


def test_the_events_query_escapes_and_counts_per_window(tmp_path: Path) -> None:
    s = settings_mod.load({}, environ={}, config_path=_empty(tmp_path))
    key = ("prod", "shop", "Deployment", "api", 'api"}')
    expr = events_expr(s, key, [EVENT_POD], 3600.0)
    assert expr.count("[1h]") == 3
    assert 'container="api\\"}"' in expr
    assert expr.count('"state", "waiting"') == 1
    assert expr.count('"state", "terminated"') == 1
    assert "and on (cluster, namespace, pod, container)" in expr


def test_a_failed_attempt_has_no_after_events_in_json() -> None:
    impact = Impact(FAILED, "insufficient-data", "x", (T0 - H, T0), None, (),
                    (EventCount("waiting", "ImagePullBackOff", 0, None),))  # fmt: skip
    assert impact_json(impact)["events"] == [
        {"state": "waiting", "reason": "ImagePullBackOff", "before": 0, "after": None}
    ]
    assert impact_json(replace(impact, events=None))["events"] is None
