"""The demo fleet simulator: determinism, scenarios, ground truth, metric files."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagetrail.analysis import detect_changes
from imagetrail.errors import ConfigError
from imagetrail.model import ChangeKind, Wait
from imagetrail.sim import (
    HOSTILE,
    ExpectedChange,
    Fleet,
    PodRun,
    ScriptedRollout,
    SimConfig,
    expected_dora,
    simulate,
    write_openmetrics,
    write_vm_import,
)
from imagetrail.sim._images import qualify
from imagetrail.sim._series import Kind, Series, noise
from imagetrail.sim.types import CRASH_RUN, display_version

DAY = 86400.0


@cache
def demo() -> Fleet:
    return simulate(SimConfig(hostile=True))


def _changes(fleet: Fleet, workload: str, cluster: str = "prod-eu") -> list[ExpectedChange]:
    return [c for c in fleet.expected_changes if c.workload == workload and c.cluster == cluster]


def _pods(fleet: Fleet, workload: str, cluster: str = "prod-eu") -> list[PodRun]:
    return [p for p in fleet.pods if p.workload == workload and p.cluster == cluster]


# -- determinism ---------------------------------------------------------------------------


def test_same_seed_same_fleet_different_seed_different_fleet() -> None:
    a, b = simulate(SimConfig(days=3)), simulate(SimConfig(days=3))
    assert a == b
    c = simulate(SimConfig(days=3, seed=8))
    assert c.pods != a.pods
    assert {p.uid for p in c.pods}.isdisjoint({p.uid for p in a.pods})


def test_metric_files_are_byte_identical_across_runs(tmp_path: Path) -> None:
    cfg = SimConfig(days=0.1, clusters=("staging",), scrape_interval=120)
    one = write_openmetrics(simulate(cfg), tmp_path / "a")
    two = write_openmetrics(simulate(cfg), tmp_path / "b")
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]


def test_start_is_fixed_not_now() -> None:
    assert SimConfig().start == 1793491200.0  # 2026-11-01T00:00:00Z
    assert demo().end == SimConfig().start + 14 * DAY


# -- the demo scenario ---------------------------------------------------------------------


def test_demo_is_big_and_varied() -> None:
    fleet = demo()
    workloads = {(p.cluster, p.namespace, p.workload_kind, p.workload) for p in fleet.pods}
    assert len(workloads) >= 40
    assert {k for _, _, k, _ in workloads} >= {
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "CronJob",
        "Job",
        "Node",
    }
    assert {ns for _, ns, _, _ in workloads} >= {
        "shop",
        "payments",
        "platform",
        "monitoring",
        "kube-system",
        "data",
    }
    images = {c.image for p in fleet.pods for c in p.containers}
    assert any(i.startswith("registry.internal:5000/") for i in images)
    assert any(i.startswith("ghcr.io/acme/") for i in images)
    assert any(i.startswith("registry.k8s.io/") for i in images)
    assert any(i.endswith(":latest") for i in images)
    assert "nginx:1.29.4" in images  # short form, as written in pod specs
    assert any(c.init for p in fleet.pods for c in p.containers)
    bare = {(p.workload, c.name) for p in fleet.pods for c in p.containers if c.report_bare_id}
    assert len(bare) >= 2


def test_every_change_kind_is_present() -> None:
    kinds = Counter(c.kind for c in demo().expected_changes)
    # cluster-gone needs a cluster silent for a week: the demo fleet has none.
    wanted = {k.value for k in ChangeKind} - {ChangeKind.OTHER, ChangeKind.CLUSTER_GONE}
    assert set(kinds) >= wanted
    assert kinds["upgrade"] > 20


def test_failed_rollout_then_rollback() -> None:
    fleet = demo()
    cart = [c for c in _changes(fleet, "cart") if c.container == "cart"]
    bad, back = cart[0], cart[1]
    assert (bad.kind, bad.to_image, bad.finished) == ("upgrade", "ghcr.io/acme/cart:2.5.0", None)
    assert back.kind == "rollback"
    assert (back.from_image, back.to_image) == (bad.to_image, bad.from_image)
    assert 15 * 60 <= back.started - bad.started <= 35 * 60
    new_pods = [p for p in _pods(fleet, "cart") if p.containers[0].image.endswith("2.5.0")]
    # the new version never replaced all old pods; its pods crash-looped and were removed
    assert 0 < len(new_pods) < 4
    assert all(p.containers[0].restarts for p in new_pods)
    assert back.finished == max(p.end for p in new_pods if p.end is not None)
    assert cart[2].kind == "upgrade"
    assert cart[2].finished is not None


def test_tag_repush() -> None:
    (ch,) = _changes(demo(), "ledger-worker")
    assert ch.kind == "tag-repush"
    assert ch.from_image == ch.to_image == "registry.internal:5000/payments/ledger:2.1"
    assert ch.from_digest != ch.to_digest


def test_downgrade_is_not_a_rollback() -> None:
    kinds = [c.kind for c in _changes(demo(), "catalog")]
    assert kinds == ["upgrade", "downgrade"]


def test_never_updated_and_latest_workloads_have_no_changes() -> None:
    fleet = demo()
    for name in ("cert-manager", "search"):
        assert _changes(fleet, name) == []
        assert len({display_version(c) for p in _pods(fleet, name) for c in p.containers}) == 1


def test_added_and_removed_workloads() -> None:
    fleet = demo()
    (added, upgrade) = _changes(fleet, "feature-flags")
    assert added.kind == "added"
    assert added.from_image is None
    assert added.started == min(p.containers[0].start for p in _pods(fleet, "feature-flags"))
    (removed,) = _changes(fleet, "legacy-gateway")
    assert removed.kind == "removed"
    assert removed.to_image is None
    assert (
        removed.started
        == removed.finished
        == max(p.end for p in _pods(fleet, "legacy-gateway") if p.end is not None)
    )
    assert upgrade.kind == "upgrade"


def test_drains_replace_pods_without_version_change() -> None:
    fleet = demo()
    coredns = _pods(fleet, "coredns")
    assert _changes(fleet, "coredns") == []
    assert len(coredns) >= 6  # two replicas, each replaced every few days
    lives = [p.end - max(p.start, fleet.config.start) for p in coredns if p.end is not None]
    assert max(lives) <= 6 * DAY
    for p in coredns:
        assert p.owner_kind == "ReplicaSet"
        assert re.fullmatch(r"coredns-[a-z0-9]{10}-[a-z0-9]{5}", p.pod)


def test_controller_shapes() -> None:
    fleet = demo()
    redis = _pods(fleet, "redis")
    assert {p.pod for p in redis} == {"redis-0", "redis-1", "redis-2"}
    assert len({p.uid for p in redis}) == len(redis)
    cron = _pods(fleet, "settlement")
    assert len(cron) >= 14 * 24
    assert all(re.fullmatch(r"settlement-\d{8}-[a-z0-9]{5}", p.pod) for p in cron)
    assert all(p.owner_kind == "Job" for p in cron)
    runs = [c.end - c.start for p in cron for c in p.containers if c.end is not None]
    assert min(runs) >= 60
    assert max(runs) <= 600
    nodes_ds = {p.node for p in _pods(fleet, "node-exporter") if p.end is None}
    assert nodes_ds == {f"prod-eu-worker-{i}" for i in range(1, 5)}
    static = [p for p in fleet.pods if p.workload_kind == "Node" and p.cluster == "prod-eu"]
    assert {p.owner_kind for p in static} == {"Node"}
    assert "kube-apiserver-prod-eu-control-plane" in {p.pod for p in static}
    inits = [c for p in _pods(fleet, "frontend") for c in p.containers if c.init]
    assert all(15 <= c.end - c.start <= 95 for c in inits if c.end is not None)


def test_rolling_update_each_old_pod_ends_after_a_new_one_runs() -> None:
    fleet = demo()
    (up,) = [c for c in _changes(fleet, "payments-api") if (c.to_image or "").endswith("4.3.0")]
    assert up.finished is not None
    assert 60 <= up.finished - up.started <= 15 * 60  # three replicas, 20-60 s apart
    pods = _pods(fleet, "payments-api")
    new = sorted(
        c.start for p in pods for c in p.containers if up.started <= c.start < up.started + 900
    )
    old_ends = sorted(
        p.end for p in pods if p.end is not None and up.started <= p.end <= up.finished
    )
    assert len(new) == len(old_ends) == 3
    assert all(o > n for o, n in zip(old_ends, new, strict=True))
    gaps = [b - a for a, b in itertools.pairwise(new)]
    assert all(20 <= g <= 120 for g in gaps)


def test_no_churn_during_a_rollout() -> None:
    # Between a change's start and finish, no pod of the old version starts.
    fleet = demo()
    for ch in fleet.expected_changes:
        if ch.finished is None or ch.from_image is None or ch.to_image is None:
            continue
        for p in fleet.pods:
            if (p.cluster, p.namespace, p.workload) != (ch.cluster, ch.namespace, ch.workload):
                continue
            for c in p.containers:
                if c.name == ch.container and not c.init and ch.started < c.start < ch.finished:
                    assert display_version(c) == (ch.to_image, ch.to_digest)


# -- ground truth consistency -------------------------------------------------------------


def _check_truth(fleet: Fleet) -> None:
    starts: dict[tuple[str, ...], set[float]] = defaultdict(set)
    ends: dict[tuple[str, ...], set[float]] = defaultdict(set)
    waits: dict[tuple[str, ...], list[Wait]] = defaultdict(list)
    for w in fleet.waits():
        s = w.span
        waits[(s.cluster, s.namespace, s.workload, s.container)].append(w)
    for p in fleet.pods:
        assert p.end is None or p.end >= p.start
        for c in p.containers:
            assert c.end is None or c.end >= c.start
            assert c.end is None or c.end < fleet.end
            assert all(c.start < r < (c.end or fleet.end) for r in c.restarts)
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", c.image_id_digest)
            if c.init:
                continue
            key = (p.cluster, p.namespace, p.workload, c.name)
            starts[key].add(c.start)
            if c.end is not None:
                ends[key].add(c.end)
    for ch in fleet.expected_changes:
        key = (ch.cluster, ch.namespace, ch.workload, ch.container)
        if ch.kind == "removed":
            assert ch.started == ch.finished == max(ends[key])
            continue
        if ch.to_digest is None:
            # an attempt whose version never ran: from its first wait to its last
            mine = [w.span for w in waits[key] if w.span.image == ch.to_image]
            assert ch.started == min(s.first_seen for s in mine)
            assert ch.ended in (None, max(s.last_seen for s in mine))
            assert ch.state in ("failed", "stuck")
            assert (ch.pods, ch.pods_ran) == (len({s.pod_uid for s in mine}), 0)
            continue
        assert ch.started in starts[key]
        assert ch.started > fleet.config.start
        if ch.finished is not None:
            assert ch.finished == ch.started or ch.finished in ends[key]
            assert ch.finished >= ch.started
        if ch.kind == "tag-repush":
            assert ch.from_image == ch.to_image
            assert ch.from_digest != ch.to_digest
        else:
            assert (ch.from_image, ch.from_digest) != (ch.to_image, ch.to_digest)


def test_expected_changes_agree_with_pods() -> None:
    _check_truth(demo())


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_ground_truth_holds_for_any_seed(seed: int) -> None:
    fleet = simulate(SimConfig(seed=seed, days=5, clusters=("a", "b")))
    _check_truth(fleet)


def test_spans_one_per_container_clipped_and_normalised() -> None:
    fleet = demo()
    spans = fleet.spans()
    t0 = fleet.config.start
    n = sum(1 for p in fleet.pods for c in p.containers if not c.init and (c.end or t0) >= t0)
    assert len(spans) == n
    assert len(fleet.spans(include_init=True)) > n
    assert all(fleet.config.start <= s.first_seen <= s.last_seen <= fleet.end for s in spans)
    assert all(s.signal == "ksm" for s in spans)
    images = {s.image for s in spans}
    assert "docker.io/library/nginx:1.29.4" in images
    assert "registry.k8s.io/metrics-server/metrics-server:v0.7.2" in images
    assert not any(i.startswith("sha256:") for i in images)
    assert any(HOSTILE in s.pod for s in spans)


# -- bench scale ---------------------------------------------------------------------------


def test_bench_fleet_is_sized_right() -> None:
    fleet = simulate(SimConfig(scale="bench", containers=400, days=3))
    at = fleet.config.start + 1.5 * DAY
    running = [s for s in fleet.spans() if s.first_seen <= at < s.last_seen]
    assert 360 <= len(running) <= 460
    images = {s.image for s in running}
    assert 400 / 14 <= len(images) <= 400 / 4
    assert sum(1 for c in fleet.expected_changes if c.kind == "upgrade") >= 9
    _check_truth(fleet)


def test_bad_configs_are_config_errors() -> None:
    for cfg in (
        SimConfig(scale="huge"),
        SimConfig(scale="bench"),
        SimConfig(days=0),
        SimConfig(clusters=()),
        SimConfig(clusters=("a", "a")),
    ):
        with pytest.raises(ConfigError):
            simulate(cfg)
    with pytest.raises(ConfigError):
        write_openmetrics(simulate(SimConfig(days=0.1)), Path("/nonexistent"), signals=("x",))


# -- metric files ------------------------------------------------------------------------

_LINE = re.compile(r'([a-zA-Z_]+)\{((?:[a-z_]+="(?:[^"\\\n]|\\[\\"n])*",?)*)\} (\S+) (\S+)')


def _strict_openmetrics(path: Path) -> dict[str, list[tuple[float, float]]]:
    """Check the rules promtool relies on; return the samples per series."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("# EOF\n")
    assert text.count("# EOF") == 1
    families: list[str] = []
    types: dict[str, str] = {}
    series: dict[str, list[tuple[float, float]]] = {}
    last = None
    for line in text.splitlines()[:-1]:
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(" ")
            assert fam not in families, f"family {fam} twice"
            families.append(fam)
            types[fam] = typ
            continue
        if line.startswith("# HELP "):
            continue
        m = _LINE.fullmatch(line)
        assert m, line
        name, _, value, ts = m.groups()
        fam = families[-1]
        assert name == (fam + "_total" if types[fam] == "counter" else fam)
        key = name + "{" + m.group(2) + "}"
        if key != last:
            assert key not in series, f"series not contiguous: {key}"
            series[key] = []
            last = key
        assert re.fullmatch(r"\d+\.\d{3}", ts)
        series[key].append((float(ts), float(value)))
    for key, samples in series.items():
        stamps = [t for t, _ in samples]
        assert stamps == sorted(stamps), key
        assert len(set(stamps)) == len(stamps), key
        if "_total{" in key and not key.startswith("http_requests_total{"):
            vals = [v for _, v in samples]
            assert vals == sorted(vals), f"counter goes down: {key}"
    return series


@cache
def _small() -> Fleet:
    return simulate(SimConfig(days=1.5, clusters=("prod-eu",), scrape_interval=300, hostile=True))


def test_openmetrics_files_are_well_formed(tmp_path: Path) -> None:
    fleet = _small()
    paths = write_openmetrics(fleet, tmp_path)
    assert [p.name for p in paths] == ["2026-11-01.om.txt", "2026-11-02.om.txt"]
    series = _strict_openmetrics(paths[0])
    names = Counter(k.split("{")[0] for k in series)
    assert set(names) == {
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "kube_pod_info",
        "kube_pod_owner",
        "kube_replicaset_owner",
        "kube_job_owner",
        "kube_pod_container_info",
        "kube_pod_init_container_info",
        "kube_pod_container_status_running",
        "kube_pod_container_status_terminated",
        "kube_pod_container_status_restarts_total",
        "kube_pod_container_status_waiting",
    }
    keys = list(series)
    # the sandbox and the pod cgroup series, as real cAdvisor has them
    assert any('image="registry.k8s.io/pause:3.10"' in k and 'container=""' in k for k in keys)
    assert any('container="",cpu="total",id="/kubepods/' in k and 'image=""' in k for k in keys)
    assert any('image="sha256:' in k and "kube_pod_container_info" in k for k in keys)
    assert any('image_id="docker.io/library/nginx@sha256:' in k for k in keys)
    assert any('owner_kind="CronJob"' in k for k in keys)
    hostile = r"<img src=x onerror=alert(1)>\"" + "'" + r"\\\nü✓"
    assert any(hostile in k for k in keys)
    # cart crash-loops on day 4 only; on day 1 every running series is 1 once running
    running = [v for k, s in series.items() if "status_running" in k for _, v in s]
    assert set(running) == {0.0, 1.0}
    # completed CronJob containers stay listed as terminated; nothing else terminates
    terminated = {k for k, s in series.items() if "status_terminated" in k and s[-1][1] == 1.0}
    assert terminated
    assert all('pod="settlement-' in k or 'pod="nightly-etl-' in k for k in terminated)
    # nothing waits on day 1: one waiting series per main container, all 0
    waiting = [k for k in series if k.startswith("kube_pod_container_status_waiting{")]
    assert len(waiting) == len([k for k in series if "status_running{" in k])
    assert {v for k in waiting for _, v in series[k]} == {0.0}


def test_openmetrics_window_and_signals(tmp_path: Path) -> None:
    fleet = _small()
    lo = fleet.config.start + 3600
    (path,) = write_openmetrics(fleet, tmp_path, signals=("ksm",), start=lo, end=lo + 1800)
    series = _strict_openmetrics(path)
    assert not any(k.startswith("container_") for k in series)
    stamps = {t for s in series.values() for t, _ in s}
    assert lo <= min(stamps)
    assert max(stamps) < lo + 1800


def test_vm_import_has_the_same_samples_in_ms(tmp_path: Path) -> None:
    fleet = _small()
    lo = fleet.config.start
    (om,) = write_openmetrics(fleet, tmp_path / "om", start=lo, end=lo + 7200)
    (vm,) = write_vm_import(fleet, tmp_path / "vm", start=lo, end=lo + 7200)
    om_lines = [x for x in om.read_text().splitlines() if not x.startswith("#")]
    vm_lines = [x for x in vm.read_text().splitlines() if not x.startswith("#")]
    assert len(om_lines) == len(vm_lines) > 1000
    for a, b in zip(om_lines[:50], vm_lines[:50], strict=True):
        head_a, ts_a = a.rsplit(" ", 1)
        head_b, ts_b = b.rsplit(" ", 1)
        assert head_a == head_b
        assert round(float(ts_a) * 1000) == int(ts_b)
    assert "# TYPE container_cpu_usage_seconds_total counter" in vm.read_text()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_a_day(tmp_path: Path) -> None:
    fleet = simulate(SimConfig(days=1, clusters=("staging",), scrape_interval=60, hostile=True))
    (path,) = write_openmetrics(fleet, tmp_path / "om")
    proc = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(path), str(tmp_path / "db")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "db").glob("*/meta.json"))


# -- the orders namespace: change impact, CI/CD events, DORA -----------------------------------

HOUR = 3600.0
_LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def _labels(key: str) -> dict[str, str]:
    return dict(_LABEL.findall(key.split("{", 1)[1]))


def _orders_rollouts(fleet: Fleet, workload: str) -> list[ScriptedRollout]:
    return [r for r in fleet.rollouts if r.workload == workload and r.namespace == "orders"]


def _day(fleet: Fleet, t: float) -> float:
    return (t - fleet.config.start) / DAY


@cache
def _prod() -> Fleet:
    # The primary cluster alone: the same orders namespace as the three-cluster demo.
    return simulate(SimConfig(clusters=("prod-eu",)))


def test_orders_only_in_the_primary_cluster_and_the_same_alone() -> None:
    fleet = demo()
    assert {p.cluster for p in fleet.pods if p.namespace == "orders"} == {"prod-eu"}
    alone = [p for p in _prod().pods if p.namespace == "orders"]
    assert alone == [p for p in fleet.pods if p.namespace == "orders"]
    assert {p.workload for p in alone} >= {"orders-api", "orders-worker", "orders-notifier"}
    replicas = Counter(p.workload for p in alone if p.end is None)
    assert (replicas["orders-api"], replicas["orders-worker"], replicas["orders-notifier"]) == (
        4,
        3,
        2,
    )


def test_orders_script() -> None:
    fleet = demo()
    routine, bad, back = _orders_rollouts(fleet, "orders-api")
    assert [r.kind for r in (routine, bad, back)] == ["rollout", "bad", "rollback"]
    assert 12.1 <= _day(fleet, routine.at) < _day(fleet, bad.at) < 12.6
    assert 2.5 * HOUR <= back.at - bad.at <= 3.5 * HOUR
    # the rollback goes back to exactly the version the bad rollout replaced
    assert back.containers == tuple((n, b, a) for n, a, b in bad.containers)
    (worker,) = _orders_rollouts(fleet, "orders-worker")
    assert 13.0 <= _day(fleet, worker.at) <= 13.5
    (notifier,) = _orders_rollouts(fleet, "orders-notifier")
    assert 15 * 60 <= fleet.end - notifier.at <= 25 * 60
    in_window = [
        r
        for r in fleet.rollouts
        if r.namespace == "orders" and r.at >= fleet.config.start + 12 * DAY
    ]
    assert len(in_window) >= 6
    assert all(r.finished is not None and r.at < r.finished < r.at + 600 for r in in_window)


def test_bad_version_restarts_and_is_rolled_back_the_good_ones_never_restart() -> None:
    fleet = demo()
    _, bad, back = _orders_rollouts(fleet, "orders-api")
    bad_image = bad.containers[0][2]
    pods = _pods(fleet, "orders-api")
    bad_runs = [c for p in pods for c in p.containers if c.image == bad_image]
    assert len(bad_runs) == 4  # the rollout completed: every replica ran the bad version
    for c in bad_runs:
        assert c.profile is not None
        assert c.profile.restart_every is not None
        assert c.end is not None
        assert back.finished is not None
        assert back.at < c.end <= back.finished  # gone with the rollback
        gaps = [b - a for a, b in itertools.pairwise((c.start, *c.restarts))]
        assert len(gaps) >= 10
        assert all(5 * 60 <= g <= 15 * 60 for g in gaps)
    assert back.finished == max(c.end for c in bad_runs if c.end is not None)
    good = [
        c
        for p in fleet.pods
        if p.namespace == "orders"
        for c in p.containers
        if c.image != bad_image
    ]
    assert good
    assert not any(c.restarts for c in good)
    assert all(c.profile is not None and c.profile.restart_every is None for c in good)
    # versions of one workload share a profile, except the bad one
    api_profiles = {c.image: c.profile for p in pods for c in p.containers}
    assert len(set(api_profiles.values())) == 2
    worker = {c.profile for p in _pods(fleet, "orders-worker") for c in p.containers}
    assert len(worker) == 1


def test_orders_changes_include_the_rollback() -> None:
    fleet = demo()
    kinds = [(c.kind, c.to_image) for c in _changes(fleet, "orders-api")]
    assert kinds == [
        ("upgrade", "ghcr.io/acme/orders-api:1.8.1"),
        ("upgrade", "ghcr.io/acme/orders-api:1.9.0"),
        ("rollback", "ghcr.io/acme/orders-api:1.8.1"),
    ]
    for ro in (r for r in fleet.rollouts if r.namespace == "orders"):
        (ch,) = [c for c in _changes(fleet, ro.workload) if ro.at <= c.started <= ro.at + 120]
        assert ch.finished == ro.finished
        assert ch.kind == ("rollback" if ro.kind == "rollback" else "upgrade")


def test_expected_impacts() -> None:
    fleet = demo()
    by = {(i.workload, i.from_image, i.to_image): i.verdict for i in fleet.expected_impacts}
    assert len(by) == len(fleet.expected_impacts)
    api, worker, notifier = (f"ghcr.io/acme/orders-{w}" for w in ("api", "worker", "notifier"))
    assert by[("orders-api", f"{api}:1.8.1", f"{api}:1.9.0")] == "regression"
    assert by[("orders-api", f"{api}:1.8.0", f"{api}:1.8.1")] == "no-change"
    assert by[("orders-worker", f"{worker}:2.3.0", f"{worker}:2.4.0")] == "no-change"
    assert by[("orders-notifier", f"{notifier}:0.9.2", f"{notifier}:0.9.3")] == (
        "insufficient-data"
    )
    rollback = [i for i in fleet.expected_impacts if i.verdict == "improvement"]
    assert [(i.from_image, i.to_image) for i in rollback] == [
        ("ghcr.io/acme/orders-api:1.9.0", "ghcr.io/acme/orders-api:1.8.1")
    ]
    changes = {change_key_of(c): c for c in fleet.expected_changes}
    for imp in fleet.expected_impacts:
        assert imp.namespace == "orders"
        ch = changes[(imp.cluster, imp.namespace, imp.workload, imp.container, imp.started)]
        assert (ch.from_image, ch.to_image) == (imp.from_image, imp.to_image)
        if imp.verdict == "improvement":
            assert ch.kind == "rollback"
        # the windows compared (1 h before, 1 h after the rollout) see no other rollout
        others = [
            r
            for r in _orders_rollouts(fleet, imp.workload)
            if not r.at <= imp.started <= r.at + 120
        ]
        assert ch.finished is not None
        assert all(r.at + 600 <= imp.started - HOUR or r.at >= ch.finished + HOUR for r in others)
        if imp.verdict == "insufficient-data":
            assert fleet.end - ch.finished < 30 * 60
        else:
            assert ch.finished + HOUR <= fleet.end


def change_key_of(c: ExpectedChange) -> tuple[object, ...]:
    return (c.cluster, c.namespace, c.workload, c.container, c.started)


def test_deploy_events() -> None:
    fleet = demo()
    orders = [r for r in fleet.rollouts if r.namespace == "orders"]
    events = fleet.deploy_events
    assert len(events) == len(orders) >= 6
    assert len({e.commit for e in events}) == len(events)
    for ro in orders:
        (ev,) = [
            e
            for e in events
            if e.workload == ro.workload and ro.at - 60 <= e.deployed_at <= ro.at - 10
        ]
        ((name, _, image),) = ro.containers
        assert (ev.cluster, ev.namespace, ev.container, ev.image) == (
            ro.cluster,
            ro.namespace,
            name,
            image,
        )
        assert re.fullmatch(r"[0-9a-f]{40}", ev.commit)
        assert 20 * 60 <= ev.deployed_at - ev.commit_time <= 6 * HOUR
        assert ev.pipeline_url.startswith("https://")
        assert ro.workload in ev.pipeline_url
        # a pipeline event is followed by the detected change of its image within minutes
        (ch,) = [
            c
            for c in _changes(fleet, ro.workload)
            if ev.deployed_at <= c.started <= ev.deployed_at + 180
        ]
        assert ch.to_image == qualify(image)
    assert not any(e.namespace != "orders" for e in events)


def test_expected_dora_orders() -> None:
    fleet = demo()
    t0 = fleet.config.start
    dora = {
        d.workload: d
        for d in expected_dora(fleet, t0 + 12 * DAY, fleet.end)
        if d.namespace == "orders"
    }
    assert set(dora) == {"orders-api", "orders-worker", "orders-notifier", "orders-pricing"}
    assert sum(d.deployments for d in dora.values()) >= 6
    api = dora["orders-api"]
    assert (api.deployments, api.failures) == (3, 1)
    _, bad, _back = _orders_rollouts(fleet, "orders-api")
    bad_image = bad.containers[0][2]
    last_bad = max(
        c.end
        for p in _pods(fleet, "orders-api")
        for c in p.containers
        if c.image == bad_image and c.end
    )
    (restore,) = api.restore_seconds
    assert restore == pytest.approx(last_bad - bad.at)
    events = {(e.workload, e.image, round(e.deployed_at)): e for e in fleet.deploy_events}
    for workload, d in dora.items():
        assert d.failures == (1 if workload == "orders-api" else 0)
        rollouts = _orders_rollouts(fleet, workload)
        leads = []
        for ro in rollouts:
            (ev,) = [
                e
                for k, e in events.items()
                if k[0] == workload and ro.at - 60 <= e.deployed_at < ro.at
            ]
            # rollout finish from the pods: the last pod of the replaced version stops
            old = ro.containers[0][1]
            ends = [
                p.end
                for p in _pods(fleet, workload)
                if p.containers[0].image == old
                and p.start <= ro.at
                and p.end is not None
                and p.end > ro.at
            ]
            leads.append(max(ends) - ev.commit_time)
        assert d.lead_seconds == pytest.approx(tuple(leads))
        assert d.deployments == len(rollouts)


def test_expected_dora_whole_fleet_definitions() -> None:
    fleet = demo()
    t0 = fleet.config.start
    cart = [
        d
        for d in expected_dora(fleet, t0 + 4 * DAY, t0 + 5 * DAY)
        if (d.cluster, d.workload) == ("prod-eu", "cart")
    ]
    # the failed rollout and its `rollout undo` are two deployments, one failed
    (c,) = cart
    assert (c.deployments, c.failures, c.lead_seconds) == (2, 1, ())
    failed, back = [x for x in _changes(fleet, "cart") if x.container == "cart"][:2]
    assert back.kind == "rollback"
    assert back.finished is not None
    (restore,) = c.restore_seconds
    failed_ro = next(
        r
        for r in fleet.rollouts
        if r.workload == "cart" and r.kind == "failed" and r.cluster == "prod-eu"
    )
    assert restore == pytest.approx(back.finished - failed_ro.at)
    assert failed_ro.at <= failed.started <= failed_ro.at + 120
    # over the whole period: deployments are the scripted rollout instants, never additions
    # or removals; three static pods rolled at once on one node are one deployment
    whole = {
        (d.cluster, d.namespace, d.workload_kind, d.workload): d
        for d in expected_dora(fleet, t0, fleet.end)
    }
    instants: dict[tuple[str, str, str, str], set[float]] = defaultdict(set)
    before: dict[tuple[str, str, str, str], ScriptedRollout] = {}
    for r in fleet.rollouts:
        key = (r.cluster, r.namespace, r.workload_kind, r.workload)
        # undoing a rollout whose pods never ran changes no running version: no deployment
        if not (r.kind == "rollback" and key in before and before[key].never_ran):
            instants[key].add(r.at)
        before[key] = r
    assert {k: d.deployments for k, d in whole.items()} == {k: len(v) for k, v in instants.items()}
    assert ("prod-eu", "platform", "Deployment", "legacy-gateway") not in whole
    assert whole[("prod-eu", "kube-system", "Node", "prod-eu-control-plane")].deployments == 1
    assert whole[("prod-eu", "shop", "Deployment", "catalog")].failures == 0  # a downgrade
    # cart in prod-eu, orders-api; the logistics attempts: tracking-api, route-planner and
    # courier-gateway (stuck at the end: a failure without a restore)
    assert sum(d.failures for d in whole.values()) == 5
    # the window is [start, end)
    (bad_at,) = [r.at for r in fleet.rollouts if r.kind == "bad"]
    at_start = {d.workload: d for d in expected_dora(fleet, bad_at, bad_at + 1)}
    assert at_start["orders-api"].deployments == 1
    assert "orders-api" not in {d.workload for d in expected_dora(fleet, bad_at - 1, bad_at)}


# -- the impact signal --------------------------------------------------------------------------


def _write_orders(
    tmp: Path, lo: float, hi: float, *, step: float = 30
) -> dict[str, list[tuple[float, float]]]:
    fleet = (
        _prod() if step == 30 else simulate(SimConfig(clusters=("prod-eu",), scrape_interval=step))
    )
    (path,) = write_openmetrics(
        fleet, tmp, signals=("ksm", "cadvisor", "impact"), start=lo, end=hi, namespaces=("orders",)
    )
    return _strict_openmetrics(path)


def _increase(samples: list[tuple[float, float]], lo: float, hi: float) -> float:
    """A counter's increase over [lo, hi), resets counted as starting from zero."""
    inside = [v for t, v in samples if lo <= t < hi]
    return sum(b - a if b >= a else b for a, b in itertools.pairwise(inside))


def _sum_increase(
    series: dict[str, list[tuple[float, float]]], pred: object, lo: float, hi: float
) -> float:
    assert callable(pred)
    return sum(_increase(s, lo, hi) for k, s in series.items() if pred(k))


def _mean(
    series: dict[str, list[tuple[float, float]]], name: str, container: str, lo: float, hi: float
) -> float:
    vals = [
        v
        for k, s in series.items()
        if k.startswith(name + "{") and f'container="{container}"' in k
        for t, v in s
        if lo <= t < hi
    ]
    assert vals
    return sum(vals) / len(vals)


def _signals(
    series: dict[str, list[tuple[float, float]]], workload: str, lo: float, hi: float
) -> dict[str, float]:
    """What an impact analysis compares, over [lo, hi), for one workload's pods."""
    pod = f'pod="{workload}-'
    container = {"orders-api": "api", "orders-worker": "worker"}[workload]

    def of(name: str, extra: str = "") -> Callable[[str], bool]:
        return lambda k: k.startswith(name + "{") and pod in k and extra in k

    requests = _sum_increase(series, of("http_requests_total"), lo, hi)
    periods = _sum_increase(series, of("container_cpu_cfs_periods_total"), lo, hi)
    return {
        "error_ratio": _sum_increase(series, of("http_requests_total", 'code="500"'), lo, hi)
        / requests,
        "restarts": _sum_increase(series, of("kube_pod_container_status_restarts_total"), lo, hi),
        "ooms": _sum_increase(series, of("container_oom_events_total"), lo, hi),
        "cpu": _sum_increase(
            series, of("container_cpu_usage_seconds_total", f'container="{container}"'), lo, hi
        )
        / (hi - lo),
        "memory": _mean(series, "container_memory_working_set_bytes", container, lo, hi),
        "throttled": _sum_increase(series, of("container_cpu_cfs_throttled_periods_total"), lo, hi)
        / periods,
        "alerts": sum(
            1 for k, s in series.items() if of("ALERTS")(k) for t, _ in s if lo <= t < hi
        ),
    }


def _blocks(
    series: dict[str, list[tuple[float, float]]], workload: str, lo: float, hi: float
) -> list[tuple[float, float]]:
    """(CPU cores, error ratio) per 5-minute block, as the impact analysis tests them."""
    return [
        (b["cpu"], b["error_ratio"])
        for b in (
            _signals(series, workload, t, t + 300)
            for t in itertools.takewhile(lambda x: x + 300 <= hi, itertools.count(lo, 300))
        )
    ]


def test_bad_version_is_worse_in_every_signal_and_the_rollback_restores(tmp_path: Path) -> None:
    from scipy.stats import mannwhitneyu

    fleet = _prod()
    _, bad, back = _orders_rollouts(fleet, "orders-api")
    assert bad.finished is not None
    assert back.finished is not None
    series = _write_orders(tmp_path, bad.at - 1.5 * HOUR, back.finished + 1.5 * HOUR)
    before = _signals(series, "orders-api", bad.at - HOUR, bad.at)
    during = _signals(series, "orders-api", bad.finished, bad.finished + HOUR)
    after = _signals(series, "orders-api", back.finished, back.finished + HOUR)
    for good in (before, after):
        assert good["error_ratio"] < 0.01
        assert good["restarts"] == good["ooms"] == good["alerts"] == 0
    assert during["error_ratio"] > 0.06
    assert during["restarts"] >= 4 * 4  # four pods, restarting every 5-15 minutes
    assert abs(during["ooms"] - during["restarts"]) <= 4  # each restart is an OOM kill
    assert during["alerts"] > 0
    assert during["cpu"] > 1.25 * before["cpu"]
    assert during["memory"] > 1.3 * before["memory"]
    assert during["throttled"] > 5 * before["throttled"]
    for name in ("cpu", "memory", "throttled"):
        assert after[name] == pytest.approx(before[name], rel=0.1), name
    blocks_before = _blocks(series, "orders-api", bad.at - HOUR, bad.at)
    blocks_during = _blocks(series, "orders-api", bad.finished, bad.finished + HOUR)
    for i in (0, 1):
        a = [b[i] for b in blocks_before]
        z = [b[i] for b in blocks_during]
        assert mannwhitneyu(a, z).pvalue < 0.001


@pytest.mark.parametrize("which", ["orders-worker", "orders-api routine"])
def test_good_upgrade_changes_only_the_noise(tmp_path: Path, which: str) -> None:
    from scipy.stats import mannwhitneyu

    fleet = _prod()
    workload = which.split()[0]
    ro = _orders_rollouts(fleet, workload)[0]
    assert ro.kind == "rollout"
    assert ro.finished is not None
    series = _write_orders(tmp_path, ro.at - 1.1 * HOUR, ro.finished + 1.1 * HOUR)
    before = _signals(series, workload, ro.at - HOUR, ro.at)
    after = _signals(series, workload, ro.finished, ro.finished + HOUR)
    assert before["restarts"] == after["restarts"] == 0
    assert before["ooms"] == after["ooms"] == 0
    assert before["alerts"] == after["alerts"] == 0
    for name in ("cpu", "memory", "throttled"):
        assert after[name] == pytest.approx(before[name], rel=0.05), name
    assert after["error_ratio"] == pytest.approx(before["error_ratio"], rel=0.15)
    assert 0.003 < before["error_ratio"] < 0.007
    blocks_before = _blocks(series, workload, ro.at - HOUR, ro.at)
    blocks_after = _blocks(series, workload, ro.finished, ro.finished + HOUR)
    for i in (0, 1):
        a = [b[i] for b in blocks_before]
        z = [b[i] for b in blocks_after]
        assert mannwhitneyu(a, z).pvalue > 0.01


def test_impact_series_and_their_labels(tmp_path: Path) -> None:
    fleet = _prod()
    _, bad, _ = _orders_rollouts(fleet, "orders-api")
    assert bad.finished is not None
    lo = bad.finished + 20 * 60
    series = _write_orders(tmp_path, lo, lo + 30 * 60)
    names = {k.split("{")[0] for k in series}
    assert names >= {
        "container_cpu_cfs_periods_total",
        "container_cpu_cfs_throttled_periods_total",
        "container_oom_events_total",
        "http_requests_total",
        "ALERTS",
        "container_cpu_usage_seconds_total",
        "kube_pod_container_status_restarts_total",
        "kube_replicaset_owner",
    }
    labels = {k: _labels(k) for k in series}
    assert all(lab["namespace"] == "orders" for lab in labels.values())
    memory = {
        frozenset(lab.items()) for k, lab in labels.items() if k.startswith("container_memory")
    }
    cadvisor_keys = {frozenset(dict(m)) for m in memory}
    assert len(cadvisor_keys) == 1
    pod_ips = {
        lab["pod"]: lab["pod_ip"] for k, lab in labels.items() if k.startswith("kube_pod_info{")
    }
    bad_image = "ghcr.io/acme/orders-api:1.9.0"
    bad_pods = {p.pod for p in fleet.pods for c in p.containers if c.image == bad_image}
    for key, lab in labels.items():
        name = key.split("{")[0]
        if name.startswith("container_cpu_cfs"):
            assert frozenset(lab.items()) in memory  # the same series as cAdvisor's memory
        elif name == "container_oom_events_total":
            assert frozenset(lab) in cadvisor_keys
            assert re.fullmatch(r"/kubepods/\w+/pod[0-9a-f-]{36}", lab["id"])
            assert lab["name"] == ""
        elif name == "http_requests_total":
            assert set(lab) == {
                "cluster",
                "job",
                "instance",
                "namespace",
                "pod",
                "container",
                "code",
            }
            assert lab["job"] == "orders"
            assert lab["code"] in ("200", "500")
            assert lab["instance"] == pod_ips[lab["pod"]] + ":8080"
        elif name == "ALERTS":
            assert lab == {
                "alertname": "KubePodCrashLooping",
                "alertstate": "firing",
                "severity": "warning",
                "cluster": "prod-eu",
                "namespace": "orders",
                "pod": lab["pod"],
                "container": "api",
            }
            assert lab["pod"] in bad_pods
            assert {v for _, v in series[key]} == {1.0}
    firing = {lab["pod"] for k, lab in labels.items() if k.startswith("ALERTS{")}
    assert firing == bad_pods
    # an OOM-killed container is running but for the back-off before each restart
    running = [
        v
        for k, s in series.items()
        if k.startswith("kube_pod_container_status_running{") and _labels(k)["pod"] in bad_pods
        for _, v in s
    ]
    assert 0.0 in running
    assert running.count(1.0) > 0.9 * len(running)


def test_app_counters_reset_only_when_the_container_restarts(tmp_path: Path) -> None:
    fleet = _prod()
    _, bad, back = _orders_rollouts(fleet, "orders-api")
    assert back.finished is not None
    series = _write_orders(tmp_path, bad.at, back.finished)
    restarts = {p.pod: p.containers[0].restarts for p in _pods(fleet, "orders-api")}
    seen = 0
    for key, samples in series.items():
        if not key.startswith("http_requests_total{"):
            continue
        for (t1, v1), (t2, v2) in itertools.pairwise(samples):
            if v2 < v1:
                seen += 1
                assert any(t1 < r <= t2 for r in restarts[_labels(key)["pod"]]), key
    assert seen > 20


def test_namespaces_filter(tmp_path: Path) -> None:
    fleet = _small()
    lo = fleet.config.start + 3600
    sig = ("ksm", "cadvisor", "impact")
    (full,) = write_openmetrics(fleet, tmp_path / "all", signals=sig, start=lo, end=lo + 3600)
    (only,) = write_openmetrics(
        fleet, tmp_path / "orders", signals=sig, start=lo, end=lo + 3600, namespaces=["orders"]
    )
    (none,) = write_vm_import(
        fleet, tmp_path / "none", signals=sig, start=lo, end=lo + 3600, namespaces=()
    )
    full_lines = full.read_text().splitlines()
    kept = [x for x in full_lines if x.startswith("#") or 'namespace="orders"' in x]
    assert only.read_text().splitlines() == kept
    assert any(x.startswith("kube_replicaset_owner{") for x in kept)
    assert len(kept) < len(full_lines) / 5
    assert all(x.startswith("#") for x in none.read_text().splitlines())


def test_impact_signal_is_deterministic_and_separate(tmp_path: Path) -> None:
    fleet = _small()
    lo = fleet.config.start
    one = write_openmetrics(fleet, tmp_path / "a", signals=("impact",), start=lo, end=lo + 7200)
    two = write_openmetrics(
        _small_again(), tmp_path / "b", signals=("impact",), start=lo, end=lo + 7200
    )
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]
    series = _strict_openmetrics(one[0])
    assert {k.split("{")[0] for k in series} == {
        "container_cpu_cfs_periods_total",
        "container_cpu_cfs_throttled_periods_total",
        "container_oom_events_total",
        "http_requests_total",
    }  # nothing crash-loops on day 0, so no ALERTS
    assert all('namespace="orders"' in k for k in series)
    other = simulate(SimConfig(days=1.5, clusters=("prod-eu",), scrape_interval=300, seed=8))
    three = write_openmetrics(other, tmp_path / "c", signals=("impact",), start=lo, end=lo + 7200)
    assert three[0].read_bytes() != one[0].read_bytes()


def _small_again() -> Fleet:
    return simulate(SimConfig(days=1.5, clusters=("prod-eu",), scrape_interval=300, hostile=True))


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(min_value=1e-4, max_value=1e4),
    step=st.sampled_from([15.0, 30.0, 60.0]),
    key=st.integers(min_value=-(2**62), max_value=2**62),
    n=st.integers(min_value=2, max_value=120),
    reset_at=st.integers(min_value=1, max_value=119),
    a=st.floats(min_value=1.7e9, max_value=1.8e9),
)
def test_noisy_counter_only_goes_down_at_a_reset(
    rate: float, step: float, key: int, n: int, reset_at: int, a: float
) -> None:
    reset = a + reset_at * step + step / 2
    s = Series("", a, a + n * step, 0, Kind.NCOUNTER, rate, step, (reset,), key)
    times = [a + i * step for i in range(n)]
    vals = [float(s.value(t)) for t in times]
    assert min(vals) >= 0
    for (t1, v1), (t2, v2) in itertools.pairwise(zip(times, vals, strict=True)):
        if not t1 < reset <= t2:
            assert v2 >= v1
    assert all(-1.0 <= noise(key, t) < 1.0 for t in times)
    assert [noise(key, t) for t in times] == [noise(key, t) for t in times]


# -- attempts: rollouts whose new pods wait (the logistics namespace) ---------------------------

ACME = "ghcr.io/acme"
ATTEMPTS = ("dispatch", "tracking-api", "route-planner", "courier-gateway")


def _scripted(fleet: Fleet, workload: str, kind: str) -> ScriptedRollout:
    (ro,) = [r for r in fleet.rollouts if r.workload == workload and r.kind == kind]
    return ro


def test_attempts_are_in_the_ground_truth() -> None:
    fleet = demo()
    assert {p.cluster for p in fleet.pods if p.namespace == "logistics"} == {"prod-eu"}
    ch = {w: _changes(fleet, w) for w in ATTEMPTS}
    # A missing secret fixed in place ten minutes later: one upgrade that took longer.
    [fixed] = ch["dispatch"]
    assert (fixed.kind, fixed.to_image, fixed.state) == (
        "upgrade", f"{ACME}/dispatch:1.13.0", "finished"
    )  # fmt: skip
    assert fixed.reasons == ("CreateContainerConfigError",)
    assert (fixed.pods, fixed.pods_ran, fixed.cut_short) == (3, 3, None)
    assert fixed.waited is not None
    assert 9 * 60 <= fixed.waited <= 10.5 * 60
    assert 600 <= fixed.started - _scripted(fleet, "dispatch", "rollout").at <= 625
    # A tag that does not exist, undone 25 minutes later: one failed change and no other; the
    # version that runs never changed.
    [missing] = ch["tracking-api"]
    assert (missing.kind, missing.from_image, missing.to_image, missing.to_digest) == (
        "upgrade", f"{ACME}/tracking-api:2.7.1", f"{ACME}/tracking-api:2.8.0", None
    )  # fmt: skip
    assert (missing.state, missing.cut_short, missing.finished) == ("failed", "failed", None)
    assert missing.reasons == ("ErrImagePull", "ImagePullBackOff")
    assert (missing.pods, missing.pods_ran, missing.waited) == (2, 0, None)
    failed, undo = (_scripted(fleet, "tracking-api", k) for k in ("failed", "rollback"))
    assert (failed.reason, failed.never_ran) == ("ImagePullBackOff", True)
    assert failed.at < missing.started <= failed.at + 60
    assert missing.ended == undo.finished  # the last waiting pod went
    assert missing.ended is not None
    assert 25 * 60 <= missing.ended - missing.started <= 28 * 60
    ran = {c.image for p in _pods(fleet, "tracking-api") for c in p.containers}
    assert ran == {f"{ACME}/tracking-api:2.7.1"}
    # A crash-looping release rolled back: the upgrade failed (its pods only crash-looped),
    # the rollback finished.
    crashed, back = ch["route-planner"]
    assert (crashed.kind, crashed.to_image, crashed.state) == (
        "upgrade", f"{ACME}/route-planner:5.4.0", "failed"
    )  # fmt: skip
    assert crashed.to_digest is not None  # a crash-looping container did start
    assert crashed.reasons == ("CrashLoopBackOff",)
    assert (crashed.pods, crashed.pods_ran, crashed.ended) == (2, 0, back.started)
    assert (back.kind, back.state, back.reasons) == ("rollback", "finished", ())
    assert 20 * 60 <= back.started - crashed.started <= 26 * 60
    # A private image still failing to pull when the simulation ends: stuck.
    [stuck] = ch["courier-gateway"]
    assert (stuck.kind, stuck.state, stuck.to_digest) == ("upgrade", "stuck", None)
    assert (stuck.finished, stuck.cut_short, stuck.ended) == (None, None, None)
    assert stuck.reasons == ("ErrImagePull", "ImagePullBackOff")
    assert (stuck.pods, stuck.pods_ran) == (1, 0)
    assert 3 * HOUR - 60 <= fleet.end - stuck.started <= 3 * HOUR
    # Every other workload's truth is the same as without waits (no other pod waits).
    assert {c.workload for c in fleet.expected_changes if c.reasons} == set(ATTEMPTS)


def test_the_analysis_finds_exactly_the_attempts_of_the_ground_truth() -> None:
    fleet = demo()
    spans = [s for s in fleet.spans() if s.namespace == "logistics"]
    waits = [w for w in fleet.waits() if w.span.namespace == "logistics"]
    # another namespace keeps the cluster's data going to the end (as in a real fleet)
    alive = [s for s in fleet.spans() if s.workload == "coredns" and s.cluster == "prod-eu"]
    found = [
        c
        for c in detect_changes(
            [*spans, *alive], since=fleet.config.start, until=fleet.end, waits=waits
        )
        if c.namespace == "logistics"
    ]
    truth = [c for c in fleet.expected_changes if c.namespace == "logistics"]
    assert len(found) == len(truth) == 5

    def row(c: object) -> tuple[object, ...]:
        names = ("workload", "from_image", "to_image", "to_digest", "started", "finished",
                 "ended", "reasons", "pods", "pods_ran", "waited", "state", "kind")  # fmt: skip
        return tuple(str(getattr(c, n)) for n in names)

    assert [row(c) for c in found] == [row(c) for c in truth]


def test_waits_agree_with_the_pods() -> None:
    fleet = demo()
    waits = fleet.waits()
    pods = {p.uid: p for p in fleet.pods}
    reasons: dict[str, set[str]] = defaultdict(set)
    periods: dict[tuple[str, str], list[Wait]] = defaultdict(list)
    for w in waits:
        s = w.span
        pod = pods[s.pod_uid]
        assert (s.cluster, s.namespace, s.workload_kind, s.workload, s.pod) == (
            pod.cluster, pod.namespace, pod.workload_kind, pod.workload, pod.pod
        )  # fmt: skip
        assert pod.start < s.first_seen < s.last_seen <= (pod.end or fleet.end)
        reasons[s.workload].add(w.reason)
        periods[(s.pod_uid, s.container)].append(w)
        ran = next((c for c in pod.containers if c.name == s.container), None)
        if ran is None:  # never ran: the pod-spec image, no digest
            [spec] = [c for c in pod.waiting if c.name == s.container]
            assert (s.image, s.digest) == (qualify(spec.image), None)
            continue
        assert s.image == display_version(ran)[0]
        if w.reason == "CreateContainerConfigError":
            assert (s.last_seen <= ran.start, s.digest) == (True, None)  # before it first ran
        else:  # CrashLoopBackOff: between a crash and the next restart, never while it runs
            assert (w.reason, s.digest) == ("CrashLoopBackOff", display_version(ran)[1])
            starts = (ran.start, *ran.restarts)
            assert not any(a < s.last_seen and s.first_seen < a + CRASH_RUN for a in starts)
            assert s.first_seen - CRASH_RUN in starts
    assert reasons == {
        "dispatch": {"CreateContainerConfigError"},
        "tracking-api": {"ErrImagePull", "ImagePullBackOff"},
        "route-planner": {"CrashLoopBackOff"},
        "courier-gateway": {"ErrImagePull", "ImagePullBackOff"},
    }
    for ws in periods.values():  # one pod container's waits follow each other
        spans = sorted((w.span.first_seen, w.span.last_seen) for w in ws)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    # still waiting at the end: only the stuck rollout's pod
    assert {w.span.workload for w in waits if w.span.last_seen == fleet.end} == {"courier-gateway"}
    # waiting pods run nothing: no span of theirs
    never = {p.uid for p in fleet.pods if p.waiting}
    assert len(never) == 3
    assert not [s for s in fleet.spans() if s.pod_uid in never]


def _ksm_window(
    tmp: Path, fleet: Fleet, lo: float, hi: float
) -> dict[str, list[tuple[float, float]]]:
    (path,) = write_openmetrics(
        fleet, tmp, signals=("ksm",), start=lo, end=hi, namespaces=["logistics"]
    )
    return _strict_openmetrics(path)


def _of(
    series: dict[str, list[tuple[float, float]]], name: str, **match: str
) -> dict[str, list[tuple[float, float]]]:
    return {
        k: v
        for k, v in series.items()
        if k.startswith(name + "{") and all(_labels(k).get(n) == x for n, x in match.items())
    }


def _check_waiting_series(fleet: Fleet, series: dict[str, list[tuple[float, float]]]) -> int:
    """Every waiting sample agrees with Fleet.waits(); returns how many there were."""
    waits: dict[tuple[str, str], list[Wait]] = defaultdict(list)
    for w in fleet.waits():
        waits[(w.span.pod_uid, w.span.container)].append(w)

    def waiting_at(uid: str, container: str, t: float, reason: str | None = None) -> bool:
        return any(
            w.span.first_seen <= t < w.span.last_seen or (t == w.span.last_seen == fleet.end)
            for w in waits[(uid, container)]
            if reason is None or w.reason == reason
        )

    n = 0
    for key, samples in _of(series, "kube_pod_container_status_waiting_reason").items():
        lab = _labels(key)
        for t, v in samples:
            assert v == 1.0
            assert waiting_at(lab["uid"], lab["container"], t, lab["reason"]), (key, t)
            n += 1
    for key, samples in _of(series, "kube_pod_container_status_waiting").items():
        lab = _labels(key)
        for t, v in samples:
            assert v == float(waiting_at(lab["uid"], lab["container"], t)), (key, t)
    return n


def test_openmetrics_have_the_waiting_series_of_the_attempts(tmp_path: Path) -> None:
    fleet = demo()
    failed = _scripted(fleet, "tracking-api", "failed")
    series = _ksm_window(tmp_path / "a", fleet, failed.at - 600, failed.at + 1800 + 600)
    assert _check_waiting_series(fleet, series) > 2 * 50
    new = {p.uid: p for p in _pods(fleet, "tracking-api") if p.waiting}
    assert len(new) == 2
    for uid, pod in new.items():
        # listed with the image it cannot pull, no image id and no container id
        [info] = _of(series, "kube_pod_container_info", uid=uid)
        lab = _labels(info)
        assert (lab["image"], lab["image_spec"]) == (f"{ACME}/tracking-api:2.8.0",) * 2
        assert (lab["image_id"], lab["container_id"]) == ("", "")
        [owner] = _of(series, "kube_pod_owner", uid=uid)
        assert (_labels(owner)["owner_kind"], _labels(owner)["owner_name"]) == (
            "ReplicaSet", pod.owner_name
        )  # fmt: skip
        for name in ("running", "terminated", "restarts_total"):
            [s] = _of(series, f"kube_pod_container_status_{name}", uid=uid).values()
            assert {v for _, v in s} == {0.0}, name
        [waiting] = _of(series, "kube_pod_container_status_waiting", uid=uid).values()
        # not yet while the pod is being set up, then waiting until it goes
        values = [v for _, v in waiting]
        assert values == sorted(values)
        assert values[-1] == 1.0
        assert (pod.end or 0) - waiting[-1][0] <= fleet.config.scrape_interval
        by_reason = {
            _labels(k)["reason"]: s
            for k, s in _of(series, "kube_pod_container_status_waiting_reason", uid=uid).items()
        }
        assert set(by_reason) == {"ErrImagePull", "ImagePullBackOff"}
        # the first pull takes long enough to be scraped, before the back-off
        assert by_reason["ErrImagePull"][0][0] < by_reason["ImagePullBackOff"][0][0]
    # the rollout undo: the old version's pod that replaced the one that went, and nothing
    # of the new version runs
    running = _of(series, "kube_pod_container_status_running")
    assert all(_labels(k)["uid"] not in new for k, s in running.items() if s[-1][1] == 1.0)


def test_openmetrics_of_a_crash_loop_a_missing_secret_and_a_stuck_pull(tmp_path: Path) -> None:
    fleet = demo()
    # CrashLoopBackOff: restarts, the last terminated reason, waiting between the runs.
    crash = _scripted(fleet, "route-planner", "failed")
    series = _ksm_window(tmp_path / "b", fleet, crash.at - 300, crash.at + 1800 + 300)
    assert _check_waiting_series(fleet, series) > 2 * 30
    looping = [p for p in _pods(fleet, "route-planner") if p.containers[0].waits]
    assert len(looping) == 2
    for pod in looping:
        [restarts] = _of(series, "kube_pod_container_status_restarts_total", uid=pod.uid).values()
        assert restarts[-1][1] == len(pod.containers[0].restarts) >= 5
        [last] = _of(series, "kube_pod_container_status_last_terminated_reason", uid=pod.uid)
        assert _labels(last)["reason"] == "Error"
        reasons = _of(series, "kube_pod_container_status_waiting_reason", uid=pod.uid)
        assert {_labels(k)["reason"] for k in reasons} == {"CrashLoopBackOff"}
        infos = _of(series, "kube_pod_container_info", uid=pod.uid)
        assert all(
            _labels(k)["image_id"].startswith(f"{ACME}/route-planner@sha256:") for k in infos
        )
    # CreateContainerConfigError: no image id until the secret appeared, then the real one.
    fix = _scripted(fleet, "dispatch", "rollout")
    series = _ksm_window(tmp_path / "c", fleet, fix.at - 300, fix.at + 1500)
    assert _check_waiting_series(fleet, series) > 15
    [pod] = [p for p in _pods(fleet, "dispatch") if p.containers[0].waits]
    listed = sorted(
        _of(series, "kube_pod_container_info", uid=pod.uid).items(), key=lambda kv: kv[1][0]
    )
    assert [_labels(k)["image_id"] == "" for k, _ in listed] == [True, False]
    assert listed[0][1][-1][0] < pod.containers[0].start <= listed[1][1][0][0]
    # A pull still failing at the end: waiting up to the last scrape.
    stuck = _scripted(fleet, "courier-gateway", "failed")
    series = _ksm_window(tmp_path / "d", fleet, stuck.at - 300, fleet.end)
    assert _check_waiting_series(fleet, series) > 300
    [pod] = [p for p in _pods(fleet, "courier-gateway") if p.waiting]
    [waiting] = _of(series, "kube_pod_container_status_waiting", uid=pod.uid).values()
    assert fleet.end - waiting[-1][0] <= fleet.config.scrape_interval
    values = [v for _, v in waiting]
    assert values == sorted(values)  # waiting once its image was to be pulled, to the end
    assert values[-1] == 1.0
