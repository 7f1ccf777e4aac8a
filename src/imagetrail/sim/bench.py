"""Generated fleets for benchmarks: about N concurrently running containers.

Each service is deployed once per cluster (same image everywhere), so an image is shared
by a handful of workloads and the fleet ends up with roughly one distinct image per seven
running containers. A few services roll out a new version each working day, cluster after
cluster; every worker node is drained every 1-3 days at night, which replaces its pods.
"""

from __future__ import annotations

import random

from imagetrail.sim.engine import ClusterSpec, ContainerSpec, Rollout, WorkloadSpec
from imagetrail.sim.types import SimConfig

DAY = 86400.0
_CONTAINERS_PER_NODE = 30
_NAMESPACES = ("shop", "payments", "platform", "data", "search", "identity", "media", "ml")
_SIDECAR = ContainerSpec("envoy", "envoyproxy/envoy:v1.31.2")


def bench_clusters(config: SimConfig) -> list[ClusterSpec]:
    """Enough worker nodes for about 30 containers each."""
    per_cluster = max(1, config.containers // len(config.clusters))
    n = max(2, round(per_cluster / _CONTAINERS_PER_NODE))
    return [
        ClusterSpec(c, tuple(f"{c}-worker-{k}" for k in range(1, n + 1)), f"{c}-control-plane")
        for c in config.clusters
    ]


def bench_workloads(config: SimConfig, clusters: list[ClusterSpec]) -> list[WorkloadSpec]:
    """Services, each deployed in every cluster, until about ``config.containers`` run."""
    rng = random.Random(f"{config.seed}:bench")
    specs: list[WorkloadSpec] = []
    total = 0
    # One DaemonSet per cluster (node agents), as every real fleet has.
    for cl in clusters:
        specs.append(
            WorkloadSpec(
                cl.name,
                "monitoring",
                "DaemonSet",
                "node-exporter",
                (ContainerSpec("node-exporter", "quay.io/prometheus/node-exporter:v1.8.2"),),
            )
        )
        total += len(cl.workers)
    services: list[tuple[str, str, int, bool, str]] = []  # ns, name, replicas, sidecar, kind
    k = 0
    while total < config.containers:
        ns = _NAMESPACES[k % len(_NAMESPACES)]
        kind = "StatefulSet" if rng.random() < 0.1 else "Deployment"
        replicas = rng.choice((1, 2, 2, 3, 3, 4))
        sidecar = kind == "Deployment" and rng.random() < 0.3
        services.append((ns, f"svc-{k:04d}", replicas, sidecar, kind))
        total += replicas * (2 if sidecar else 1) * len(clusters)
        k += 1
    days = int(config.days) + 1
    rollouts_per_day = max(3, config.containers // 250)
    plan: dict[str, list[float]] = {}  # service -> rollout day offsets (working hours)
    for day in range(days):
        for name in rng.sample([s[1] for s in services], min(rollouts_per_day, len(services))):
            plan.setdefault(name, []).append(day + rng.uniform(8.0, 15.0) / 24.0)
    for ns, name, replicas, sidecar, kind in services:
        repo = f"ghcr.io/bench/{name}"
        minor = rng.randrange(1, 40)
        base = (ContainerSpec("app", f"{repo}:1.{minor}.0"),) + ((_SIDECAR,) if sidecar else ())
        for ci, cl in enumerate(clusters):
            template, rollouts = base, []
            for n, when in enumerate(sorted(plan.get(name, []))):
                # cluster after cluster, an hour apart: the same version lands everywhere
                at = config.start + when * DAY + ci * 3600.0
                template = (
                    ContainerSpec("app", f"{repo}:1.{minor + n + 1}.0"),
                    *template[1:],
                )
                rollouts.append(Rollout(at=at, containers=template))
            specs.append(
                WorkloadSpec(
                    cl.name, ns, kind, name, base, replicas=replicas, rollouts=tuple(rollouts)
                )
            )
    return specs
