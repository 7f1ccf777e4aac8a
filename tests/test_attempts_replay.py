"""Failed and stuck rollouts (issue 18) on replays of real kube-state-metrics scrapes in a real
Prometheus, with scripted attempts (tests/replay.py, ``ScriptedPod``): each scripted pod copies
the series a real pod of the k8s 1.31 scrape has, under a new name, uid and ReplicaSet, and
plays a script of container states. Three clusters, one attempt each, 30 s scrapes, 3 hours:

- ``pull``: ``scraper/e2e-hpa`` rolled to ``hpa-example:v9.9.9``, a tag that does not exist:
  its new pod waits ``ErrImagePull``/``ImagePullBackOff`` for 25 minutes, then the rollout is
  undone (the pod goes); the real pod runs throughout.
- ``crash``: ``scraper/e2e-deployment`` (two ``perl:5.34.0`` pods) released as ``perl:5.36.0``,
  which crash-loops for 20 minutes (one old pod made room for it); rolled back: the new pods
  go, a new ``perl:5.34.0`` pod starts.
- ``config``: ``scraper/e2e-deployment`` released as ``perl:5.38.0`` whose pod waits
  ``CreateContainerConfigError`` (a missing secret) for 10 minutes, then runs once the secret
  is there; the second new pod follows and the old pods end.

Each cluster also runs two real pods that never change (kube-proxy, coredns), and a
``<cluster>-base`` cluster replays the same without the pods' waiting periods: what the
attempts must not change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from imagetrail.cli import app
from imagetrail.timeutil import format_time
from replay import Phase, ScriptedPod, image_pull_backoff, write_scripted_replay
from servers import Server, backfill_prometheus_tsdb, start_prometheus

pytestmark = pytest.mark.slow
START = 1_762_002_000.0  # a whole hour
MINUTES = 180
MIN = 60.0
SCRAPE = 30.0
NEAR = 2 * SCRAPE  # "within two scrape intervals"

HPA_POD = "e2e-hpa-5b6945fcbd-wt6ck"
HPA_OLD = "registry.k8s.io/hpa-example:latest"
HPA_NEW = "registry.k8s.io/hpa-example:v9.9.9"
PERL_PODS = ("e2e-deployment-7788bdb6df-7r2fx", "e2e-deployment-7788bdb6df-fqlfk")
PERL_OLD = "docker.io/library/perl:5.34.0"
PERL_CRASH = "docker.io/library/perl:5.36.0"
PERL_FIXED = "docker.io/library/perl:5.38.0"
STEADY = ("kube-proxy-dhhlf", "coredns-6f6b679f8f-hktpp")
WHOLE = (Phase(0, MINUTES + 1, "real"),)


def made_up_id(image: str) -> str:
    """An image id for a tag the scrape does not have (the digest is made up)."""
    repository = image.rsplit(":", 1)[0]
    return f"{repository}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def uid(name: str) -> str:
    h = hashlib.sha256(name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def new_pod(cluster: str, template: str, name: str, image: str, *phases: Phase) -> ScriptedPod:
    return ScriptedPod(
        cluster,
        template,
        phases,
        name=name,
        uid=uid(cluster + name),
        replicaset=name.rsplit("-", 1)[0],
        image=image,
        image_id=made_up_id(image) if image != PERL_OLD else "",
    )


def real(cluster: str, pod: str, until: float = MINUTES + 1) -> ScriptedPod:
    return ScriptedPod(cluster, pod, (Phase(0, until, "real"),))


def script() -> list[ScriptedPod]:
    pods = [real(c, p) for c in ("pull", "crash", "config") for p in STEADY]
    # (a) 60-85: a tag that does not exist, undone after 25 minutes.
    pods += [
        real("pull", HPA_POD),
        new_pod("pull", HPA_POD, "e2e-hpa-7d9c6b5f48-q8zrn", HPA_NEW, *image_pull_backoff(60, 85)),
    ]
    # (b) 60-80.5: two new pods crash-loop (maxSurge 1, maxUnavailable 1: one old pod ends);
    # `kubectl rollout undo` at 80: the new pods go, the old ReplicaSet starts a pod again.
    crash = "e2e-deployment-5c8d7f9b6d-"
    pods += [
        real("crash", PERL_PODS[0]),
        real("crash", PERL_PODS[1], until=60.5),
        new_pod("crash", PERL_PODS[0], crash + "h2x7m", PERL_CRASH, Phase(60, 80.5, "crashloop")),
        new_pod("crash", PERL_PODS[0], crash + "k9p4t", PERL_CRASH, Phase(60, 80.5, "crashloop")),
        new_pod(
            "crash",
            PERL_PODS[0],
            "e2e-deployment-7788bdb6df-w5v8c",
            PERL_OLD,
            Phase(80, 80.5, "waiting", "ContainerCreating"),
            Phase(80.5, MINUTES + 1, "running"),
        ),
    ]
    # (c) 60-70: the new pod pulls its image, then waits for a secret that is created at 70;
    # it runs, the second new pod follows (maxSurge 1, maxUnavailable 0), the old pods end.
    fixed = "e2e-deployment-6b7f8c9d5e-"
    pods += [
        real("config", PERL_PODS[1], until=70.5),
        real("config", PERL_PODS[0], until=71.5),
        new_pod(
            "config",
            PERL_PODS[0],
            fixed + "r4t2v",
            PERL_FIXED,
            Phase(60, 60.5, "waiting", "ContainerCreating"),
            Phase(60.5, 70, "waiting", "CreateContainerConfigError"),
            Phase(70, MINUTES + 1, "running"),
        ),
        new_pod(
            "config", PERL_PODS[0], fixed + "z8m3q", PERL_FIXED, Phase(70.5, MINUTES + 1, "running")
        ),
    ]
    base = [p.without_waits(f"{p.cluster}-base") for p in pods]
    return pods + [p for p in base if p is not None]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("attempts")
    replay = write_scripted_replay(work, script(), start=START, minutes=MINUTES, step=SCRAPE)
    backfill_prometheus_tsdb([replay], work / "tsdb")
    server = start_prometheus(work / "tsdb")
    try:
        yield server
    finally:
        server.stop()


def unix(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run(*args: str, ledger: Path) -> Any:
    result = CliRunner().invoke(
        app, list(args), env={"IMAGETRAIL_LEDGER": str(ledger), "IMAGETRAIL_SIGNAL": "ksm"}
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "json" in args else result.stdout


@pytest.fixture(scope="module")
def ledger(prometheus: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger") / "ledger.db"
    since, until = format_time(START - 5 * MIN), format_time(START + MINUTES * MIN)
    run("sync", "--prometheus", prometheus.url, "--since", since, "--until", until, ledger=path)
    return path


def changes(ledger: Path, cluster: str) -> list[dict[str, Any]]:
    rows = run("changes", "--from", format_time(START - 5 * MIN), "-f", "json", ledger=ledger)
    return [r for r in rows if r["cluster"] == cluster]


def versions(ledger: Path, cluster: str, minute: float) -> dict[tuple[str, str | None], int]:
    at = format_time(START + minute * MIN)
    rows = run("versions", "--cluster", cluster, "--at", at, "-f", "json", ledger=ledger)
    return {(r["image"], r["digest"]): r["containers"] for r in rows}


def near(text: str | None, minute: float) -> bool:
    t = unix(text)
    return t is not None and abs(t - (START + minute * MIN)) <= NEAR


# -- the replay itself, read straight from Prometheus ------------------------------------------
def query(server: Server, expr: str, minute: float) -> dict[str, float]:
    import httpx

    answer = httpx.get(
        f"{server.url}/api/v1/query", params={"query": expr, "time": START + minute * MIN}
    ).json()
    assert answer["status"] == "success", answer
    return {
        ",".join(f"{k}={v}" for k, v in sorted(r["metric"].items())): float(r["value"][1])
        for r in answer["data"]["result"]
    }


def test_prometheus_answers_the_scripted_series(prometheus: Server) -> None:
    # Backfilled series have no staleness markers: look at the last 20 s (one sample) only.
    reasons = "sum by (reason) (last_over_time(%s[20s]))"
    waiting = 'kube_pod_container_status_waiting_reason{cluster="%s"}'
    assert query(prometheus, reasons % (waiting % "pull"), 59.5) == {}
    assert query(prometheus, reasons % (waiting % "pull"), 60) == {"reason=ErrImagePull": 1.0}
    assert query(prometheus, reasons % (waiting % "pull"), 70) == {"reason=ImagePullBackOff": 1.0}
    assert query(prometheus, reasons % (waiting % "pull"), 84.5) == {"reason=ImagePullBackOff": 1.0}
    assert query(prometheus, reasons % (waiting % "pull"), 85) == {}  # the pod went
    assert query(prometheus, reasons % (waiting % "config"), 65) == {
        "reason=CreateContainerConfigError": 1.0
    }
    assert query(prometheus, reasons % (waiting % "config"), 70) == {}
    assert query(prometheus, reasons % (waiting % "config-base"), 65) == {}
    info = 'kube_pod_container_info{cluster="pull",pod="e2e-hpa-7d9c6b5f48-q8zrn"}'
    info = f"last_over_time({info}[20s])"
    [labels] = query(prometheus, info, 70)
    assert "image=registry.k8s.io/hpa-example:v9.9.9" in labels
    assert "image_id=" not in labels  # empty: never pulled (an empty label is no label)
    restarts = 'kube_pod_container_status_restarts_total{cluster="crash",pod=~".*-5c8d7f9b6d-.*"}'
    assert set(query(prometheus, restarts, 60.5).values()) == {1.0}
    assert set(query(prometheus, restarts, 80).values()) == {7.0}  # 10 s back-off doubling
    crashing = "sum by (reason) (last_over_time(%s[20s]))" % (waiting % "crash")
    seen = {r for minute in range(61, 80) for r in query(prometheus, crashing, minute)}
    assert seen == {"reason=CrashLoopBackOff"}
    owner = 'kube_replicaset_owner{cluster="pull",replicaset="e2e-hpa-7d9c6b5f48"}'
    [labels] = query(prometheus, owner, 70)
    assert "owner_name=e2e-hpa" in labels


# -- the change log ------------------------------------------------------------------------------
def the(rows: list[dict[str, Any]], workload: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["workload"] == workload]


def reasons(row: dict[str, Any]) -> list[str]:
    return list(row["reasons"] or [])


def test_a_tag_that_does_not_exist_undone_after_25_minutes(ledger: Path) -> None:
    [change] = changes(ledger, "pull")  # and no other change
    assert (change["workload"], change["container"]) == ("e2e-hpa", "php-apache")
    assert (change["from_image"], change["to_image"], change["to_digest"]) == (
        HPA_OLD, HPA_NEW, None
    )  # fmt: skip
    # The real pod runs `:latest`, which orders against no tag: the kind is `other`
    # (docs/analysis.md, kind rule 4), as it is for a rollout that succeeds.
    assert change["kind"] == "other"
    assert (change["state"], change["cut_short"], change["finished"]) == ("failed", "failed", None)
    assert sorted(reasons(change)) == ["ErrImagePull", "ImagePullBackOff"]
    assert (change["pods"], change["pods_ran"]) == (1, 0)
    assert near(change["started"], 60), change["started"]
    assert near(change["ended"], 84.5), change["ended"]  # its last sample: the pod went at 85


def test_a_crash_looping_release_rolled_back(ledger: Path) -> None:
    upgrade, rollback = changes(ledger, "crash")  # and no other change
    assert {upgrade["workload"], rollback["workload"]} == {"e2e-deployment"}
    assert (upgrade["kind"], upgrade["from_image"], upgrade["to_image"]) == (
        "upgrade", PERL_OLD, PERL_CRASH
    )  # fmt: skip
    assert (upgrade["state"], upgrade["finished"]) == ("failed", None)
    assert "CrashLoopBackOff" in reasons(upgrade)  # exactly: see the test of reasons below
    assert (upgrade["pods"], upgrade["pods_ran"]) == (2, 0)
    # The first sample that shows a restart (the first run died between two scrapes).
    assert near(upgrade["started"], 60.5), upgrade["started"]
    assert near(upgrade["ended"], 80.5), upgrade["ended"]
    # The rollback is a real change: a crash-looping container counts as running
    # (docs/architecture.md, "What counts as running": it has restarted, so it started), so
    # perl:5.36.0 was the current version from 60.5 until the pod `kubectl rollout undo`
    # started with perl:5.34.0; and it carries no attempt of its own (its new pod was only
    # being created for one scrape).
    assert (rollback["kind"], rollback["from_image"], rollback["to_image"]) == (
        "rollback", PERL_CRASH, PERL_OLD
    )  # fmt: skip
    assert rollback["state"] == "finished"
    assert near(rollback["started"], 80.5), rollback["started"]
    assert near(rollback["finished"], 80.5), rollback["finished"]
    assert (reasons(rollback), rollback["pods"], rollback["waited"]) == ([], None, None)


def test_a_config_error_fixed_in_place_after_10_minutes(ledger: Path) -> None:
    [change] = changes(ledger, "config")  # and no other change
    assert (change["workload"], change["kind"], change["from_image"], change["to_image"]) == (
        "e2e-deployment", "upgrade", PERL_OLD, PERL_FIXED
    )  # fmt: skip
    assert change["to_digest"] == made_up_id(PERL_FIXED).split("@")[1]
    assert change["state"] == "finished"
    assert "CreateContainerConfigError" in reasons(change)
    assert (change["pods"], change["pods_ran"]) == (2, 2)
    assert abs(change["waited"] - 600) <= NEAR, change["waited"]
    assert near(change["started"], 70), change["started"]  # the first new pod runs
    assert near(change["finished"], 71), change["finished"]  # the last old pod's last sample


@pytest.mark.parametrize("cluster", ["pull", "crash", "config"])
def test_attempts_move_no_time_of_the_changes_that_ran(ledger: Path, cluster: str) -> None:
    fields = ("workload", "container", "kind", "from_image", "to_image", "started", "finished")
    base = [tuple(r[f] for f in fields) for r in changes(ledger, f"{cluster}-base")]
    with_attempts = [r for r in changes(ledger, cluster) if r["to_image"] != HPA_NEW]
    assert [tuple(r[f] for f in fields) for r in with_attempts] == base
    if cluster != "crash":  # crash-base still crash-loops: that ran (and failed) there too
        assert all(not reasons(r) for r in changes(ledger, f"{cluster}-base"))


def test_reasons_say_only_why_the_version_did_not_run(ledger: Path) -> None:
    found = {
        (r["cluster"], r["to_image"]): reasons(r)
        for cluster in ("pull", "crash", "config")
        for r in changes(ledger, cluster)
        if r["reasons"]
    }
    assert found == {
        ("pull", HPA_NEW): ["ErrImagePull", "ImagePullBackOff"],
        ("crash", PERL_CRASH): ["CrashLoopBackOff"],
        ("config", PERL_FIXED): ["CreateContainerConfigError"],
    }


# -- running versions ---------------------------------------------------------------------------
INSTANTS = (59, 60, 60.5, 61, 65, 69.5, 70, 70.5, 71, 75, 80, 80.5, 81, 84.5, 85, 86, 90, 120)


@pytest.mark.parametrize("cluster", ["pull", "crash", "config"])
def test_running_versions_at_every_instant_are_unchanged_by_the_attempts(
    ledger: Path, cluster: str
) -> None:
    for minute in INSTANTS:
        assert versions(ledger, cluster, minute) == versions(ledger, f"{cluster}-base", minute), (
            minute
        )


def test_running_versions_follow_the_script(ledger: Path) -> None:
    def images(cluster: str, minute: float) -> dict[str, int]:
        out: dict[str, int] = {}
        for (image, _), n in versions(ledger, cluster, minute).items():
            out[image] = out.get(image, 0) + n
        return out

    steady = {"registry.k8s.io/kube-proxy:v1.31.0": 1, "registry.k8s.io/coredns/coredns:v1.11.1": 1}
    for minute in (30, 60, 70, 84.5, 120):
        assert images("pull", minute) == steady | {HPA_OLD: 1}, minute
    assert images("crash", 70) == steady | {PERL_OLD: 1, PERL_CRASH: 2}
    assert images("crash", 120) == steady | {PERL_OLD: 2}
    assert images("config", 65) == steady | {PERL_OLD: 2}
    assert images("config", 75) == steady | {PERL_FIXED: 2}
