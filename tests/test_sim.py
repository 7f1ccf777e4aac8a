"""The demo fleet simulator: determinism, scenarios, ground truth, metric files."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagetrail.errors import ConfigError
from imagetrail.model import ChangeKind
from imagetrail.sim import (
    HOSTILE,
    ExpectedChange,
    Fleet,
    PodRun,
    SimConfig,
    simulate,
    write_openmetrics,
    write_vm_import,
)
from imagetrail.sim._images import display_version

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
    assert set(kinds) >= {k.value for k in ChangeKind if k is not ChangeKind.OTHER}
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
    (up,) = [c for c in _changes(fleet, "payments-api") if c.to_image.endswith("4.3.0")]
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

_LINE = re.compile(r'([a-z_]+)\{((?:[a-z_]+="(?:[^"\\\n]|\\[\\"n])*",?)*)\} (\S+) (\S+)')


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
        if "_total{" in key:
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
