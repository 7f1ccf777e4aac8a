"""The alert rules: their shape, their docs, and promtool proving each fires when it should.

The promtool unit tests are generated here from the thresholds in the settings: for every
alert, series that make it fire (checked with their exact labels and annotations) and series
that must keep it silent (just below the threshold, before ``for`` has elapsed, other label
values). They run against ``render()``'s output with the default settings and with changed
ones, and a rule file rendered with one threshold changed must fail the default expectations.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from imagetrail import rules, settings
from imagetrail.errors import InputError
from imagetrail.rules.alerts import CLUSTER_SILENT_FOR, LEDGER_LAG_MAX, SYNC_FOR
from imagetrail.settings import Settings
from imagetrail.timeutil import parse_duration
from servers import MissingBinary, find_binary

ROOT = Path(__file__).resolve().parents[1]
ALERTS_MD = ROOT / "docs" / "alerts.md"
ALERTMANAGER_YML = ROOT / "docs" / "examples" / "alertmanager.yml"
MINUTE = 60
TARGET = {"job": "imagetrail", "instance": "127.0.0.1:8080"}
# Every threshold changed, each to a whole number of minutes so the 1m test grid hits it.
CHANGED = {
    "alert_rollout_stuck_after": "10m",
    "alert_rollout_failing_after": "5m",
    "alert_drift_after": "45m",
    "alert_image_max_age": "7d",
    "alert_recent_window": "2h",
    "alert_churn_changes": "2",
    "churn_window": "12h",
    "cluster_silent_after": "10m",
}
# Which alerts each threshold setting drives (their expression, `for` or annotations).
DRIVES = {
    "alert_rollout_stuck_after": {"ImagetrailRolloutStuck"},
    "alert_rollout_failing_after": {"ImagetrailRolloutFailing"},
    "alert_drift_after": {"ImagetrailVersionDrift"},
    "alert_image_max_age": {"ImagetrailImageNotUpdated"},
    "alert_recent_window": {"ImagetrailTagRepushed", "ImagetrailRollback"},
    "alert_churn_changes": {"ImagetrailVersionChurn"},
    "churn_window": {"ImagetrailVersionChurn"},
    "cluster_silent_after": {"ImagetrailClusterSilent"},
}
PROM_DURATION = re.compile(r"(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")
# Label values a pod spec can carry that try to break YAML, PromQL or the Go templates.
HOSTILE = {
    "cluster": 'prod"eu',
    "namespace": "shop\n{{ $value }}",
    "workload_kind": "Deployment",
    "workload": "web<script>alert(1)</script>",
    "container": 'app\'\\x {{ template "x" }}',
}
HOSTILE_TARGET = {"job": 'imagetrail"\n{{ .Value }}', "instance": "h\\o'st:8080"}


def load_settings(tmp_path: Path, values: Mapping[str, str] | None = None) -> Settings:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    return settings.load(dict(values or {}), environ={}, config_path=empty)


def promtool() -> str:
    try:
        return find_binary("promtool")
    except MissingBinary as exc:  # CI must not pass without it
        pytest.fail(str(exc), pytrace=False)


# ---------------------------------------------------------------- expected annotations


def humanize_duration(v: float) -> str:
    """Prometheus's ``humanizeDuration`` for the whole seconds (>= 1 min) the tests use."""
    assert v >= 60, v
    assert float(v).is_integer(), v
    whole = int(v)
    days, hours = whole // 86400, whole // 3600 % 24
    minutes, seconds = whole // 60 % 60, whole % 60
    if days:
        return f"{days}d {hours}h {minutes}m {seconds}s"
    if hours:
        return f"{hours}h {minutes}m {seconds}s"
    return f"{minutes}m {seconds}s"


def go_value(v: float) -> str:
    """Go's ``%v`` of a float64, for the small whole numbers the tests use."""
    assert float(v).is_integer(), v
    assert abs(v) < 1e6, v
    return str(int(v))


_TEMPLATE = re.compile(r"\{\{ (\$labels\.(\w+)|\$value \| humanizeDuration|\$value) \}\}")


def expand(template: str, labels: Mapping[str, str], value: float) -> str:
    """Expand the three template forms the rules use; anything else fails the test."""

    def one(m: re.Match[str]) -> str:
        if m[2] is not None:
            return labels[m[2]]  # KeyError: the template names a label the alert lacks
        if "humanizeDuration" in m[1]:
            return humanize_duration(value)
        return go_value(value)

    # Substitute in one pass over the template, so label values are never re-expanded.
    out = _TEMPLATE.sub(one, template)
    assert "{{" not in _TEMPLATE.sub("", template), f"unexpected template in {template!r}"
    return out


# ---------------------------------------------------------------- promtool test generation


def series(name: str, labels: Mapping[str, str]) -> str:
    """A series in PromQL syntax, label values escaped as PromQL strings."""

    def quote(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    inner = ",".join(f"{k}={quote(v)}" for k, v in labels.items())
    return f"{name}{{{inner}}}"


@dataclass(frozen=True)
class Fire:
    labels: Mapping[str, str]  # the alert's labels without alertname and severity
    value: float


class Cases:
    """Builds one promtool test group (its series and evaluations) for one alert."""

    def __init__(self, rule: rules.Rule) -> None:
        self.rule = rule
        self.input_series: list[dict[str, str]] = []
        self.evals: list[dict[str, Any]] = []
        self.fired = self.silent = 0

    def add(self, name: str, labels: Mapping[str, str], values: str) -> None:
        self.input_series.append({"series": series(name, labels), "values": values})

    def expect(self, minute: int, *fires: Fire) -> None:
        exp = []
        for fire in fires:
            # Prometheus drops a label whose value is empty (`tag=""` of a digest-only image).
            labels = {k: v for k, v in {**fire.labels, **self.rule.labels}.items() if v}
            annotations = {
                k: expand(v, labels, fire.value) for k, v in self.rule.annotations.items()
            }
            exp.append({"exp_labels": labels, "exp_annotations": annotations})
        self.evals.append(
            {"eval_time": f"{minute}m", "alertname": self.rule.name, "exp_alerts": exp}
        )
        self.fired += bool(fires)
        self.silent += not fires

    def group(self) -> dict[str, Any]:
        return {
            "interval": "1m",
            "input_series": self.input_series,
            "alert_rule_test": self.evals,
        }


def minutes(seconds: float) -> int:
    assert seconds % MINUTE == 0, f"thresholds in the tests must be whole minutes: {seconds}"
    return int(seconds // MINUTE)


def other(w: Mapping[str, str], **changes: str) -> dict[str, str]:
    """``w`` with some label values changed (suffixed, so hostile values stay hostile)."""
    return {k: (v + changes[k] if k in changes else v) for k, v in w.items()}


def rollout_stuck(c: Cases, s: Settings, w: dict[str, str], t: dict[str, str]) -> None:
    n = minutes(s.alert_rollout_stuck_after)
    assert n >= 3
    stuck, done = {**w, **t}, {**other(w, workload="-done"), **t}
    flapping = {**other(w, workload="-flap"), **t}
    c.add("imagetrail_workload_versions", stuck, f"2+0x{n + 10}")
    c.add("imagetrail_workload_versions", done, f"1+0x{n + 10}")
    # Two versions, then one for a scrape, then two again: `for` starts over.
    c.add("imagetrail_workload_versions", flapping, f"2+0x{n - 2} 1 2+0x{n + 10}")
    # With the exporter's imagetrail_rollout_in_progress: fires only while it is 1. A rollout
    # aborted or superseded (or finished beside a canary) is over, whatever still runs.
    rolling, over = {**other(w, workload="-rolling"), **t}, {**other(w, workload="-over"), **t}
    for labels, in_progress in ((rolling, 1), (over, 0)):
        c.add("imagetrail_workload_versions", labels, f"2+0x{n + 10}")
        c.add("imagetrail_rollout_in_progress", labels, f"{in_progress}+0x{n + 10}")
    c.expect(n - 1)  # pending, not yet firing
    c.expect(n + 1, Fire(stuck, 2), Fire(rolling, 2))


def rollout_failing(c: Cases, s: Settings, w: dict[str, str], t: dict[str, str]) -> None:
    """Series as the exporter gives them: one per reason while the newest rollout is stuck,
    dropped (stale) once it ran, failed for good or was undone."""
    n = minutes(s.alert_rollout_failing_after)
    assert n >= 3
    length = n + 30
    pulling = {**w, "reason": "ImagePullBackOff", **t}
    erring = {**w, "reason": "ErrImagePull", **t}  # the same rollout, a second reason
    # Stuck from minute 0 until minute n + 10, then the series goes (the rollout was undone).
    c.add("imagetrail_rollout_failing", pulling, f"1+0x{n + 10} stale")
    c.add("imagetrail_rollout_failing", erring, f"1+0x{n + 10} stale")
    # Stuck for less than the duration, then fixed: never fires.
    brief = {**other(w, workload="-brief"), "reason": "CreateContainerConfigError", **t}
    c.add("imagetrail_rollout_failing", brief, f"1+0x{n - 2} stale")
    # Gone for one scrape (the exporter restarted): `for` starts over, fires n minutes later.
    flap = {**other(w, workload="-flap"), "reason": "CrashLoopBackOff", **t}
    c.add("imagetrail_rollout_failing", flap, f"1+0x{n - 2} stale 1+0x{length}")
    # A brand-new workload that runs nothing has the series alone (no other imagetrail_*).
    new = {**other(w, workload="-new"), "reason": "ImagePullBackOff", **t}
    c.add("imagetrail_rollout_failing", new, f"_x2 1+0x{length}")

    def firing(m: int) -> list[Fire]:
        out = [Fire(pulling, 1), Fire(erring, 1)] if n <= m <= n + 10 else []
        out += [Fire(flap, 1)] if m >= 2 * n else []  # back at minute n: `for` started over
        return out + ([Fire(new, 1)] if m >= n + 2 else [])

    for m in sorted({n - 1, n, n + 1, n + 2, 2 * n - 1, 2 * n, n + 10, n + 11, n + 12}):
        c.expect(m, *firing(m))  # n - 1: pending, not yet firing; n + 11: resolved


def version_drift(c: Cases, s: Settings, w: dict[str, str], t: dict[str, str]) -> None:
    n = minutes(s.alert_drift_after)
    length = n + 20
    c1, c2 = w["cluster"], w["cluster"] + "-us"

    def info(wl: Mapping[str, str], cluster: str, image: str, digest: str, values: str) -> None:
        tag = image.rpartition(":")[2]
        labels = {**wl, "cluster": cluster, "image": image, "tag": tag, "digest": digest}
        c.add("imagetrail_image_info", {**labels, **t}, values)

    always = f"1+0x{length}"
    v1, v2 = "ghcr.io/acme/web:1.0", "ghcr.io/acme/web:2.0"
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    # Fires: one cluster runs v1, the other v2.
    drifted = other(w, workload="-a")
    info(drifted, c1, v1, d1, always)
    info(drifted, c2, v2, d2, always)
    # Fires later: the second cluster moves to v2 at minute 10 while the first stays on v1.
    later = other(w, workload="-h")
    info(later, c1, v1, d1, always)
    info(later, c2, v1, d1, "1+0x9 stale")
    info(later, c2, v2, d2, f"_x10 1+0x{length - 10}")
    # Silent: both clusters mid-rollout with the same two versions.
    both = other(w, workload="-b")
    for cluster in (c1, c2):
        info(both, cluster, v1, d1, always)
        info(both, cluster, v2, d2, always)
    # Silent: a rollout in one cluster only (ImagetrailRolloutStuck's business).
    single = other(w, workload="-c")
    info(single, c1, v1, d1, always)
    info(single, c1, v2, d2, always)
    # Silent: the same image seen with and without a digest (ksm vs cAdvisor signal).
    digests = other(w, workload="-d")
    info(digests, c1, v1, d1, always)
    info(digests, c2, v1, "", always)
    # Silent: different images, but in workloads that differ in one label.
    base = other(w, workload="-e")
    info(base, c1, v1, d1, always)
    for label in ("namespace", "workload_kind", "workload", "container"):
        info(other(base, **{label: "-x"}), c2, v2, d2, always)

    def fire(wl: Mapping[str, str], count: int) -> Fire:
        return Fire({k: v for k, v in wl.items() if k != "cluster"}, count)

    c.expect(n - 1)
    c.expect(n + 1, fire(drifted, 2))
    c.expect(n + 11, fire(drifted, 2), fire(later, 2))


def latest_tag(c: Cases, s: Settings, w: dict[str, str], t: dict[str, str]) -> None:
    fires = []
    for suffix, image, tag, fire in (
        ("-latest", "docker.io/library/nginx:latest", "latest", True),
        ("-untagged", "docker.io/library/nginx", "", True),
        ("-pinned", "docker.io/library/nginx:1.25", "1.25", False),
        ("-alpine", "docker.io/library/nginx:latest-alpine", "latest-alpine", False),
        ("-prefix", "docker.io/library/nginx:v-latest", "v-latest", False),
    ):
        labels = {**other(w, container=suffix), "image": image, "tag": tag}
        labels["digest"] = "sha256:" + "a" * 64
        # The exporter drops the series when the version stops: Prometheus marks it stale.
        c.add("imagetrail_image_info", {**labels, **t}, "1+0x10 stale")
        if fire:
            fires.append(Fire({**labels, **t}, 1))
    c.expect(1, *fires)
    c.expect(12)  # the series are gone: so is the alert


def image_not_updated(c: Cases, s: Settings, w: dict[str, str], t: dict[str, str]) -> None:
    limit = float(s.alert_image_max_age)
    assert limit.is_integer()
    old = {**w, "image": "ghcr.io/acme/web:1.0", "digest": "sha256:" + "1" * 64, **t}
    young = {**other(w, container="-young"), "image": "ghcr.io/acme/web:2.0", "digest": "", **t}
    # The age grows a minute per minute: below the limit at 1m, equal at 2m, above at 3m.
    c.add("imagetrail_running_image_age_seconds", old, f"{int(limit) - 120}+60x10")
    c.add("imagetrail_running_image_age_seconds", young, f"{int(limit) - 600}+60x10")
    c.expect(1)
    c.expect(2)
    c.expect(3, Fire(old, limit + 60))


def _recent(kind: str) -> Callable[[Cases, Settings, dict[str, str], dict[str, str]], None]:
    def cases(c: Cases, s: Settings, w: dict[str, str], t: dict[str, str]) -> None:
        window = minutes(s.alert_recent_window)
        start = 10  # the change happened at minute 10; its series appears then
        length = window + 20
        for k in ("tag-repush", "rollback", "upgrade", "downgrade"):
            c.add(
                "imagetrail_last_change_timestamp_seconds",
                {**w, "kind": k, **t},
                f"_x{start} {start * MINUTE}+0x{length}",
            )
        # An old change of the kind: silent from the start.
        c.add(
            "imagetrail_last_change_timestamp_seconds",
            {**other(w, workload="-old"), "kind": kind, **t},
            f"{start * MINUTE - (window + 1) * MINUTE}+0x{length}",
        )
        changed = {**w, "kind": kind, **t}
        c.expect(start - 1)
        c.expect(start + window - 1, Fire(changed, (window - 1) * MINUTE))
        c.expect(start + window)  # exactly the window ago: no longer recent
        c.expect(start + window + 1)

    return cases


def version_churn(c: Cases, s: Settings, w: dict[str, str], t: dict[str, str]) -> None:
    limit = int(s.alert_churn_changes)
    busy, calm = {**w, **t}, {**other(w, workload="-calm"), **t}
    c.add("imagetrail_recent_changes", busy, f"{limit}+0x2 {limit + 1}+0x5")
    c.add("imagetrail_recent_changes", calm, f"{limit}+0x10")
    c.expect(2)
    c.expect(4, Fire(busy, limit + 1))


def sync_failing(c: Cases, s: Settings, w: dict[str, str], t: dict[str, str]) -> None:
    n = minutes(SYNC_FOR)
    failing, first_pass = t, other(t, instance="-first")
    recovered = other(t, instance="-ok")
    c.add("imagetrail_sync_up", failing, f"0+0x{n + 10}")
    c.add("imagetrail_sync_errors_total", failing, f"1+1x{n + 10}")
    # The first pass is still running (a long backfill): no error yet, so no alert.
    c.add("imagetrail_sync_up", first_pass, f"0+0x{n + 10}")
    c.add("imagetrail_sync_errors_total", first_pass, f"0+0x{n + 10}")
    c.add("imagetrail_sync_up", recovered, f"1+0x{n + 10}")
    c.add("imagetrail_sync_errors_total", recovered, f"3+0x{n + 10}")
    c.expect(n - 1)
    c.expect(n + 1, Fire(failing, 0))


def ledger_lagging(c: Cases, s: Settings, w: dict[str, str], t: dict[str, str]) -> None:
    n = minutes(SYNC_FOR)
    limit = int(LEDGER_LAG_MAX)
    behind, at_limit = t, other(t, instance="-limit")
    c.add("imagetrail_ledger_lag_seconds", behind, f"{limit + 1}+60x{n + 10}")
    c.add("imagetrail_ledger_lag_seconds", at_limit, f"{limit}+0x{n + 10}")
    c.add("imagetrail_ledger_lag_seconds", other(t, instance="-fresh"), f"60+0x{n + 10}")
    c.expect(n - 1)
    c.expect(n + 1, Fire(behind, limit + 1 + (n + 1) * 60))


def cluster_silent(c: Cases, s: Settings, w: dict[str, str], t: dict[str, str]) -> None:
    """Each target's series over minutes 0..length; at minute m, time() is 60 m."""
    limit = minutes(s.cluster_silent_after)
    wait = minutes(CLUSTER_SILENT_FOR)
    assert 3 <= limit < 60
    assert wait >= 3
    length = 150
    hours2 = 2 * 3600

    def add(name: str, labels: Mapping[str, str], value: Callable[[int], int]) -> None:
        c.add(name, labels, " ".join(str(value(m)) for m in range(length + 1)))

    def cluster(target: Mapping[str, str], suffix: str) -> dict[str, str]:
        return {"cluster": w["cluster"] + suffix, **target}

    # One ledger keeps up (its data ends a minute before now); cluster "-gone" stopped at
    # minute 10 and falls behind, "-up" keeps going, "-limit" is always exactly the
    # threshold behind the ledger's end, "-gap" pauses for the threshold's length then
    # catches up.
    keeping = t
    add("imagetrail_ledger_data_end_timestamp_seconds", keeping, lambda m: 60 * m - 60)
    gone = cluster(keeping, "")
    add("imagetrail_cluster_last_data_timestamp_seconds", gone, lambda m: min(60 * m, 600) - 90)
    up = cluster(keeping, "-up")
    add("imagetrail_cluster_last_data_timestamp_seconds", up, lambda m: 60 * m - 90)
    at_limit = cluster(keeping, "-limit")
    add(
        "imagetrail_cluster_last_data_timestamp_seconds",
        at_limit,
        lambda m: 60 * m - 60 - 60 * limit,
    )
    paused = cluster(keeping, "-gap")
    add(
        "imagetrail_cluster_last_data_timestamp_seconds",
        paused,
        lambda m: 60 * m - 90 if not 20 <= m < 20 + limit + 1 else 60 * 20 - 90,
    )
    # Another instance whose whole ledger ends two hours before now: every cluster is silent.
    behind = other(t, instance="-behind")
    add("imagetrail_ledger_data_end_timestamp_seconds", behind, lambda m: 60 * m - hours2)
    stale_a, stale_b = cluster(behind, ""), cluster(behind, "-b")
    add("imagetrail_cluster_last_data_timestamp_seconds", stale_a, lambda m: 60 * m - hours2)
    add("imagetrail_cluster_last_data_timestamp_seconds", stale_b, lambda m: 60 * m - hours2 - 60)

    behind_fires = (Fire(stale_a, hours2), Fire(stale_b, hours2 + 60))
    c.expect(wait - 1)  # the lagging ledger's clusters are pending, not yet firing
    # "-gone": more than the limit behind the ledger's end (60 m - 570 s) from minute
    # 10 + limit on.
    first = 10 + limit
    c.expect(first + wait - 1, *behind_fires)  # pending
    c.expect(first + wait, Fire(gone, 60 * (first + wait) - 510), *behind_fires)
    # Two hours after it stopped; "-gap" (back by minute 20 + limit + 1) never fired.
    c.expect(130, Fire(gone, 60 * 130 - 510), *behind_fires)
    for m in range(20, 20 + limit + wait + 2):
        c.expect(m, *((Fire(gone, 60 * m - 510),) if m >= first + wait else ()), *behind_fires)


CASES: dict[str, Callable[[Cases, Settings, dict[str, str], dict[str, str]], None]] = {
    "ImagetrailRolloutStuck": rollout_stuck,
    "ImagetrailRolloutFailing": rollout_failing,
    "ImagetrailVersionDrift": version_drift,
    "ImagetrailLatestTag": latest_tag,
    "ImagetrailImageNotUpdated": image_not_updated,
    "ImagetrailTagRepushed": _recent("tag-repush"),
    "ImagetrailRollback": _recent("rollback"),
    "ImagetrailVersionChurn": version_churn,
    "ImagetrailSyncFailing": sync_failing,
    "ImagetrailLedgerLagging": ledger_lagging,
    "ImagetrailClusterSilent": cluster_silent,
}
DEFAULT_W = {
    "cluster": "prod-eu",
    "namespace": "shop",
    "workload_kind": "Deployment",
    "workload": "web",
    "container": "app",
}


def unit_tests(
    s: Settings, rule_file: str, w: Mapping[str, str] = DEFAULT_W, t: Mapping[str, str] = TARGET
) -> dict[str, Any]:
    """A promtool test file: one test group per alert, expectations from ``s``."""
    by_name = {r.name: r for r in rules.alert_rules(s)}
    groups = []
    for name in rules.ALERT_NAMES:
        cases = Cases(by_name[name])
        CASES[name](cases, s, dict(w), dict(t))
        assert cases.fired, f"{name} needs cases where it fires"
        assert cases.silent, f"{name} needs cases where it stays silent"
        groups.append(cases.group())
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": groups}


@dataclass(frozen=True)
class PromtoolResult:
    returncode: int
    output: str

    @property
    def failed_alerts(self) -> set[str]:
        return set(re.findall(r"alertname: (\w+), time:", self.output))


def run_promtool_test(
    tmp_path: Path, rules_yaml: str, tests: Mapping[str, Any], name: str = "t"
) -> PromtoolResult:
    (tmp_path / f"{name}-rules.yml").write_text(rules_yaml)
    test_file = tmp_path / f"{name}-test.yml"
    test_file.write_text(yaml.safe_dump(dict(tests), sort_keys=False, allow_unicode=True))
    proc = subprocess.run(
        [promtool(), "test", "rules", test_file.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return PromtoolResult(proc.returncode, proc.stdout + proc.stderr)


def assert_passes(result: PromtoolResult) -> None:
    assert result.returncode == 0, result.output
    assert "SUCCESS" in result.output, result.output
    assert "FAILED" not in result.output, result.output


# ---------------------------------------------------------------- fast tests


def test_render_prometheus_is_one_group_of_every_alert(tmp_path: Path) -> None:
    doc = yaml.safe_load(rules.render(load_settings(tmp_path), "prometheus"))
    assert list(doc) == ["groups"]
    (group,) = doc["groups"]
    assert group["name"] == "imagetrail"
    assert tuple(r["alert"] for r in group["rules"]) == rules.ALERT_NAMES
    assert len(set(rules.ALERT_NAMES)) == len(rules.ALERT_NAMES)


def test_render_prometheus_operator_wraps_the_same_groups(tmp_path: Path) -> None:
    s = load_settings(tmp_path)
    doc = yaml.safe_load(rules.render(s, "prometheus-operator"))
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["kind"] == "PrometheusRule"
    assert doc["metadata"]["name"] == rules.PROMETHEUS_RULE_NAME
    assert all(isinstance(v, str) for v in doc["metadata"]["labels"].values())
    assert doc["spec"]["groups"] == yaml.safe_load(rules.render(s, "prometheus"))["groups"]


def test_render_refuses_other_formats(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown rules format"):
        rules.render(load_settings(tmp_path), "grafana")


def test_rules_round_trip_through_yaml(tmp_path: Path) -> None:
    s = load_settings(tmp_path)
    (group,) = yaml.safe_load(rules.render(s, "prometheus"))["groups"]
    assert group["rules"] == [r.to_dict() for r in rules.alert_rules(s)]


def test_every_alert_has_severity_and_annotations(tmp_path: Path) -> None:
    for rule in rules.alert_rules(load_settings(tmp_path)):
        assert rule.labels["severity"] in {"info", "warning", "critical"}, rule.name
        assert set(rule.annotations) == {"summary", "description", "runbook_url"}, rule.name
        assert rule.annotations["summary"].strip(), rule.name
        assert "$labels." in rule.annotations["description"], rule.name
        assert rule.annotations["runbook_url"] == (
            "https://github.com/imagetrail/imagetrail/blob/main/docs/alerts.md#" + rule.name.lower()
        )


def github_anchors(markdown: str) -> set[str]:
    """Heading anchors as GitHub makes them: lowercase, punctuation dropped, spaces -> '-'."""
    anchors = set()
    for line in markdown.splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            text = re.sub(r"[^\w\- ]", "", m[1].strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_runbook_anchors_exist_in_docs(tmp_path: Path) -> None:
    anchors = github_anchors(ALERTS_MD.read_text(encoding="utf-8"))
    for rule in rules.alert_rules(load_settings(tmp_path)):
        anchor = rule.annotations["runbook_url"].partition("#")[2]
        assert anchor in anchors, f"docs/alerts.md has no heading for #{anchor}"


def section(markdown: str, heading: str) -> str:
    m = re.search(rf"^## {heading}\n(.*?)(?=^## |\Z)", markdown, re.MULTILINE | re.DOTALL)
    assert m, f"docs/alerts.md has no '## {heading}' section"
    return m[1]


def test_docs_explain_each_rule_its_setting_and_runbook() -> None:
    text = ALERTS_MD.read_text(encoding="utf-8")
    for name in rules.ALERT_NAMES:
        body = section(text, name)
        assert "**Runbook.**" in body, name
        for setting, alerts in DRIVES.items():
            if name in alerts:
                assert f"`{setting}`" in body, f"{name} does not name its setting {setting}"
    for words in ("rule_files", "PrometheusRule", "imagetrail rules", "alertmanager.yml"):
        assert words in text


def test_thresholds_come_from_settings(tmp_path: Path) -> None:
    default = {r.name: r for r in rules.alert_rules(load_settings(tmp_path))}
    changed = {r.name: r for r in rules.alert_rules(load_settings(tmp_path, CHANGED))}
    assert default["ImagetrailRolloutStuck"].for_ == "30m"
    assert changed["ImagetrailRolloutStuck"].for_ == "10m"
    assert default["ImagetrailRolloutFailing"].for_ == "10m"
    assert changed["ImagetrailRolloutFailing"].for_ == "5m"
    assert default["ImagetrailRolloutFailing"].expr == "imagetrail_rollout_failing == 1"
    assert default["ImagetrailVersionDrift"].for_ == "6h"
    assert changed["ImagetrailVersionDrift"].for_ == "45m"
    assert default["ImagetrailImageNotUpdated"].expr.endswith("> 7776000")
    assert changed["ImagetrailImageNotUpdated"].expr.endswith("> 604800")
    assert "90d" in default["ImagetrailImageNotUpdated"].annotations["summary"]
    for name in ("ImagetrailTagRepushed", "ImagetrailRollback"):
        assert default[name].expr.endswith("< 3600")
        assert changed[name].expr.endswith("< 7200")
    assert default["ImagetrailVersionChurn"].expr.endswith("> 5")
    assert changed["ImagetrailVersionChurn"].expr.endswith("> 2")
    assert "24h" in default["ImagetrailVersionChurn"].annotations["summary"]
    assert "12h" in changed["ImagetrailVersionChurn"].annotations["summary"]
    for name in ("ImagetrailLatestTag", "ImagetrailSyncFailing", "ImagetrailLedgerLagging"):
        assert default[name] == changed[name]


@given(st.integers(min_value=0, max_value=10**13))
def test_prometheus_duration_is_exact_and_valid(ms: int) -> None:
    text = rules.prometheus_duration(ms / 1000)
    assert PROM_DURATION.fullmatch(text), text
    assert math.isclose(parse_duration(text), ms / 1000, rel_tol=0, abs_tol=1e-9)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1.5, "1s500ms"),
        (30 * 60, "30m"),
        (5400, "1h30m"),
        (86400, "24h"),
        (36 * 3600, "36h"),
        (2 * 86400, "2d"),
        (90 * 86400, "90d"),
        (0.0004, "0s"),
    ],
)
def test_prometheus_duration_examples(seconds: float, text: str) -> None:
    assert rules.prometheus_duration(seconds) == text


@pytest.mark.parametrize("bad", [-1.0, math.inf, math.nan])
def test_prometheus_duration_refuses_non_durations(bad: float) -> None:
    with pytest.raises(InputError):
        rules.prometheus_duration(bad)


def test_expected_annotations_follow_the_templates() -> None:
    """The test's own expander, checked against a hand-written expansion."""
    labels = {**DEFAULT_W, "severity": "warning"}
    assert expand("{{ $labels.namespace }}/{{ $labels.workload }} x{{ $value }}", labels, 2) == (
        "shop/web x2"
    )
    assert expand("{{ $value | humanizeDuration }}", labels, 3540) == "59m 0s"
    assert expand("{{ $value | humanizeDuration }}", labels, 90 * 86400 + 61) == "90d 0h 1m 1s"
    with pytest.raises(KeyError):
        expand("{{ $labels.pod }}", labels, 1)


# ---------------------------------------------------------------- promtool


@pytest.mark.slow
@pytest.mark.parametrize("fmt", rules.FORMATS)
def test_promtool_check_rules(tmp_path: Path, fmt: str) -> None:
    for name, values in (("default", None), ("changed", CHANGED)):
        doc = yaml.safe_load(rules.render(load_settings(tmp_path, values), fmt))
        groups = doc["groups"] if fmt == "prometheus" else doc["spec"]["groups"]
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        proc = subprocess.run(
            [promtool(), "check", "rules", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"SUCCESS: {len(rules.ALERT_NAMES)} rules found" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("values", [None, CHANGED], ids=["default", "changed"])
def test_promtool_unit_tests_pass(tmp_path: Path, values: dict[str, str] | None) -> None:
    s = load_settings(tmp_path, values)
    tests = unit_tests(s, "t-rules.yml")
    assert_passes(run_promtool_test(tmp_path, rules.render(s, "prometheus"), tests))


@pytest.mark.slow
def test_promtool_unit_tests_with_hostile_label_values(tmp_path: Path) -> None:
    """Quotes, backslashes, newlines and template syntax in labels come out as plain text."""
    s = load_settings(tmp_path)
    tests = unit_tests(s, "t-rules.yml", HOSTILE, HOSTILE_TARGET)
    result = run_promtool_test(tmp_path, rules.render(s, "prometheus"), tests)
    assert_passes(result)
    # And the expectations really carried the hostile text (not some escaped form).
    descriptions = [
        alert["exp_annotations"]["description"]
        for group in tests["tests"]
        for evaluation in group["alert_rule_test"]
        for alert in evaluation["exp_alerts"]
    ]
    for value in (*HOSTILE.values(), *HOSTILE_TARGET.values()):
        assert any(value in d for d in descriptions), value


@pytest.mark.slow
def test_promtool_reports_a_wrong_expectation(tmp_path: Path) -> None:
    """The harness fails when promtool does: here, one expected annotation is off by a space."""
    s = load_settings(tmp_path)
    tests = unit_tests(s, "t-rules.yml")
    fire = tests["tests"][0]["alert_rule_test"][-1]["exp_alerts"][0]
    fire["exp_annotations"]["description"] += " "
    result = run_promtool_test(tmp_path, rules.render(s, "prometheus"), tests)
    assert result.returncode != 0
    assert result.failed_alerts == {"ImagetrailRolloutStuck"}
    with pytest.raises(AssertionError):
        assert_passes(result)


@pytest.mark.slow
@pytest.mark.parametrize("setting", sorted(DRIVES))
def test_each_threshold_setting_drives_its_alerts(tmp_path: Path, setting: str) -> None:
    """Rules rendered with one threshold changed fail the default expectations, for exactly
    the alerts that threshold drives."""
    tests = unit_tests(load_settings(tmp_path), "t-rules.yml")
    changed = load_settings(tmp_path, {setting: CHANGED[setting]})
    result = run_promtool_test(tmp_path, rules.render(changed, "prometheus"), tests)
    assert result.returncode != 0, result.output
    assert result.failed_alerts == DRIVES[setting], result.output


# ---------------------------------------------------------------- Alertmanager example


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        binary = find_binary("amtool")
    except MissingBinary as exc:
        pytest.fail(str(exc), pytrace=False)
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.slow
def test_alertmanager_example_is_valid() -> None:
    proc = amtool("check-config", str(ALERTMANAGER_YML))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


# What the example promises in docs/alerts.md: labels of an alert -> its receiver.
ROUTES = [
    ({"alertname": "ImagetrailRolloutStuck", "severity": "warning", "namespace": "payments"},
     "payments-team"),
    ({"alertname": "ImagetrailTagRepushed", "severity": "warning", "namespace": "shop"},
     "platform-chat"),
    ({"alertname": "ImagetrailRollback", "severity": "info", "namespace": "payments"},
     "imagetrail-digest"),
    ({"alertname": "ImagetrailImageNotUpdated", "severity": "info", "namespace": "shop"},
     "imagetrail-digest"),
    ({"alertname": "ImagetrailSyncFailing", "severity": "warning", "job": "imagetrail"},
     "platform-chat"),
    ({"alertname": "KubePodCrashLooping", "severity": "warning", "namespace": "shop"},
     "default"),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("labels", "receiver"), ROUTES)
def test_alertmanager_example_routes(labels: dict[str, str], receiver: str) -> None:
    pairs = [f"{k}={v}" for k, v in labels.items()]
    proc = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER_YML}", *pairs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == [receiver]


def test_alertmanager_route_tests_cover_every_severity(tmp_path: Path) -> None:
    used = {r.labels["severity"] for r in rules.alert_rules(load_settings(tmp_path))}
    tested = {labels["severity"] for labels, _ in ROUTES if "Imagetrail" in labels["alertname"]}
    assert used <= tested
