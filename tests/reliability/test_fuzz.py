"""Fuzzing the real `imagetrail serve`: generated requests over every endpoint and parameter
of its OpenAPI, and hostile label values written into a real Prometheus, synced and served.

Both must give no answer >= 500, no traceback in the server log, and every request done within
its deadline (``request_timeout``, set small, plus a little for queueing on two cores).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from reliability.conftest import Clean, Fleet
from reliability.fuzz import HOSTILE, Generator, Pools, endpoints, run_fuzz
from reliability.helpers import BIN, Served, base_env, record, run
from servers import backfill_prometheus_tsdb, start_prometheus

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]
REQUEST_TIMEOUT = 2.0
DEADLINE = REQUEST_TIMEOUT + 3.0  # queueing behind other requests on a loaded 2-core box
FUZZ_REQUESTS = 10_000
HOSTILE_PODS = 1_000
HOSTILE_REQUESTS = 3_000
WORKERS = 6
SERVE_ENV = {
    "IMAGETRAIL_REQUEST_TIMEOUT": f"{REQUEST_TIMEOUT:g}s",
    "IMAGETRAIL_FOLLOW_INTERVAL": "1h",
    "IMAGETRAIL_RETRY_BACKOFF": "10ms",
    "IMAGETRAIL_RETRY_BUDGET": "1s",
    "IMAGETRAIL_TIMEOUT": "2s",
}


def _check(srv: Served, figures: dict[str, Any], result: Any) -> list[str]:
    log = srv.log_text()
    figures["tracebacks_in_log"] = log.count("Traceback")
    problems = []
    if result.server_errors:
        problems.append(f"{len(result.server_errors)} answers >= 500: {result.server_errors[:5]}")
    if result.transport_errors:
        problems.append(f"transport errors: {result.transport_errors[:5]}")
    if result.over_deadline:
        problems.append(f"over the {DEADLINE}s deadline: {result.over_deadline[:5]}")
    if figures["tracebacks_in_log"]:
        at = log.index("Traceback")
        problems.append(f"tracebacks in the server log:\n{log[at : at + 3000]}")
    return problems


def test_fuzz_every_endpoint(fleet: Fleet, clean: Clean, clean_copy: Path, tmp_path: Path) -> None:
    env = base_env(tmp_path, **SERVE_ENV)
    spans = [dict(row) for row in clean.dump["spans"]]
    with Served(["--prometheus", fleet.url, "--ledger", str(clean_copy)], tmp_path, env) as srv:
        openapi = httpx.get(srv.url + "/openapi.json", timeout=30).json()
        eps = endpoints(openapi)
        pools = Pools(
            start=fleet.start,
            end=fleet.end,
            clusters=sorted({s["cluster"] for s in spans}),
            namespaces=sorted({s["namespace"] for s in spans}),
            workloads=sorted({f"{s['namespace']}/{s['workload']}" for s in spans})
            + sorted({s["workload"] for s in spans}),
            images=sorted({s["image"] for s in spans}),
        )
        gen = Generator(eps, pools, seed=11)
        result = run_fuzz(
            srv.url, gen.request, count=FUZZ_REQUESTS, workers=WORKERS, deadline=DEADLINE
        )
        figures = {
            "endpoints": len(eps),
            "parameters": sorted({name for ep in eps for name, _ in ep.params}),
            **result.figures(),
            "request_timeout": REQUEST_TIMEOUT,
            "deadline": DEADLINE,
        }
        problems = _check(srv, figures, result)
    record("fuzz", "fuzzing every endpoint (OpenAPI)", figures, passed=not problems)
    assert not problems, "\n".join(problems)


def escape_label(value: str) -> str:
    """OpenMetrics label value escaping."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _hostile_values(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct hostile label values (a hostile core, a unique suffix)."""
    cores = [h for h in HOSTILE if "\x00" not in h and "\r" not in h]
    return [f"{rng.choice(cores)}{rng.choice(cores)}-{i}" for i in range(n)]


def _hostile_openmetrics(path: Path, start: float, pods: list[dict[str, str]]) -> None:
    """kube-state-metrics series for every pod, one sample a minute for 30 minutes."""
    times = [start + 60 * k for k in range(30)]

    def labels(values: dict[str, str]) -> str:
        return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in values.items()) + "}"

    families = [
        ("kube_pod_container_info", "gauge", "kube_pod_container_info", "info"),
        ("kube_pod_container_status_running", "gauge", "kube_pod_container_status_running", "c"),
        (
            "kube_pod_container_status_terminated",
            "gauge",
            "kube_pod_container_status_terminated",
            "c",
        ),
        (
            "kube_pod_container_status_restarts",
            "counter",
            "kube_pod_container_status_restarts_total",
            "c",
        ),
        ("kube_pod_owner", "gauge", "kube_pod_owner", "owner"),
    ]
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for family, kind, metric, what in families:
            out.write(f"# TYPE {family} {kind}\n")
            for pod in pods:
                ident = {k: pod[k] for k in ("cluster", "namespace", "pod", "uid")}
                if what == "info":
                    values = {
                        **ident,
                        "container": pod["container"],
                        "image": pod["image"],
                        "image_spec": pod["image"],
                        "image_id": f"{pod['image']}@sha256:{'ab' * 32}",
                        "container_id": f"containerd://{pod['uid']}",
                    }
                elif what == "owner":
                    values = {
                        **ident,
                        "owner_kind": "ReplicaSet",
                        "owner_name": pod["replicaset"],
                        "owner_is_controller": "true",
                    }
                else:
                    values = {**ident, "container": pod["container"]}
                value = "0" if metric.endswith(("terminated", "_total")) else "1"
                series = metric + labels(values)
                out.writelines(f"{series} {value} {t:.0f}\n" for t in times)
        out.write("# TYPE kube_replicaset_owner gauge\n")
        seen = set()
        for pod in pods:
            key = (pod["cluster"], pod["namespace"], pod["replicaset"])
            if key in seen:
                continue
            seen.add(key)
            values = {
                "cluster": pod["cluster"],
                "namespace": pod["namespace"],
                "replicaset": pod["replicaset"],
                "owner_kind": "Deployment",
                "owner_name": pod["workload"],
                "owner_is_controller": "true",
            }
            series = "kube_replicaset_owner" + labels(values)
            out.writelines(f"{series} 1 {t:.0f}\n" for t in times)
        out.write("# EOF\n")


def test_hostile_labels_sync_and_serve(tmp_path: Path) -> None:
    rng = random.Random(5)
    start = (time.time() // 3600) * 3600 - 6 * 3600
    namespaces = _hostile_values(rng, 40)
    workloads = _hostile_values(rng, 200)
    clusters = ["hostile", 'cl"us\\ter\n<b>', "<script>alert(1)</script>"]
    pods = []
    for i, pod in enumerate(_hostile_values(rng, HOSTILE_PODS)):
        workload = workloads[i % len(workloads)]
        pods.append(
            {
                "cluster": clusters[i % len(clusters)],
                "namespace": namespaces[i % len(namespaces)],
                "pod": pod,
                "uid": f"uid-{i}",
                "container": rng.choice(HOSTILE[11:30]) + f"c{i % 3}",
                "image": f"registry.example/{rng.choice(HOSTILE[11:30])}:{i % 5}",
                "workload": workload,
                "replicaset": f"{workload}-5d4f8",
            }
        )
    om = tmp_path / "hostile.om.txt"
    _hostile_openmetrics(om, start, pods)
    tsdb = tmp_path / "tsdb"
    backfill_prometheus_tsdb([om], tsdb)
    figures: dict[str, Any] = {"label_sets": len(pods)}
    with start_prometheus(tsdb, copy_tsdb=False) as prom:
        env = base_env(tmp_path, **SERVE_ENV)
        ledger = tmp_path / "hostile.db"
        began = time.monotonic()
        done = run(
            [
                *(BIN, "sync", "--prometheus", prom.url, "--ledger", str(ledger)),
                *("--since", str(start - 60), "--until", str(start + 1860), "--signal", "ksm"),
            ],
            env,
        )
        figures["sync_exit"] = done.returncode
        figures["sync_seconds"] = round(time.monotonic() - began, 1)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Traceback" not in done.stderr
        with Served(["--prometheus", prom.url, "--ledger", str(ledger)], tmp_path, env) as srv:
            got = httpx.get(
                srv.url + "/api/v1/spans",
                params={"from": str(start - 60), "to": str(start + 1860), "limit": "10000"},
                timeout=60,
            )
            assert got.status_code == 200, got.text[:2000]
            figures["pods_in_ledger"] = len({s["pod"] for s in _rows(got.json())})
            eps = endpoints(httpx.get(srv.url + "/openapi.json", timeout=30).json())
            pools = Pools(
                start=start,
                end=start + 1800,
                clusters=clusters,
                namespaces=namespaces,
                workloads=[f"{p['namespace']}/{p['workload']}" for p in pods[:200]] + workloads,
                images=sorted({p["image"] for p in pods}),
                hostile=[p["pod"] for p in pods[:200]] + list(HOSTILE),
            )
            gen = Generator(eps, pools, seed=13)
            result = run_fuzz(
                srv.url, gen.request, count=HOSTILE_REQUESTS, workers=WORKERS, deadline=DEADLINE
            )
            figures.update(result.figures())
            problems = _check(srv, figures, result)
    if figures["pods_in_ledger"] != len(pods):
        problems.append(f"{figures['pods_in_ledger']} of {len(pods)} hostile pods in the ledger")
    record("hostile", "hostile label values: synced and served", figures, passed=not problems)
    assert not problems, "\n".join(problems)


def _rows(answer: Any) -> list[dict[str, Any]]:
    if isinstance(answer, list):
        return answer
    for key in ("spans", "items", "data", "rows"):
        if isinstance(answer.get(key), list):
            rows: list[dict[str, Any]] = answer[key]
            return rows
    raise AssertionError(f"unexpected /api/v1/spans shape: {str(answer)[:500]}")
