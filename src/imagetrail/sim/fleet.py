"""``simulate()``: from a :class:`SimConfig` to a :class:`Fleet` with its ground truth."""

from __future__ import annotations

from imagetrail.errors import ConfigError
from imagetrail.sim.bench import bench_clusters, bench_workloads
from imagetrail.sim.engine import ClusterSpec, WorkloadSpec, run_workload
from imagetrail.sim.scenario import clusters_for, demo_workloads, node_drains
from imagetrail.sim.truth import deploy_events, derive_changes, derive_impacts
from imagetrail.sim.types import Fleet, PodRun, ScenarioNote, ScriptedRollout, SimConfig


def _check(config: SimConfig) -> None:
    if config.scale not in ("demo", "bench"):
        raise ConfigError(f"unknown simulator scale {config.scale!r}", hint="use 'demo' or 'bench'")
    if not config.clusters or len(set(config.clusters)) != len(config.clusters):
        raise ConfigError("the simulator needs one or more distinct cluster names")
    if config.days <= 0 or config.scrape_interval <= 0:
        raise ConfigError("days and scrape_interval must be positive")
    if config.scale == "bench" and config.containers <= 0:
        raise ConfigError(
            "scale 'bench' needs a container count", hint="e.g. SimConfig(containers=1000)"
        )


def simulate(config: SimConfig = SimConfig()) -> Fleet:  # noqa: B008 - frozen, safe default
    """Simulate a fleet: same config, same fleet, byte for byte."""
    pods, rollouts, notes = _run(config)
    end = config.start + config.days * 86400.0
    changes = derive_changes(pods, config.start, end)
    return Fleet(
        config=config,
        pods=tuple(pods),
        expected_changes=changes,
        notes=tuple(notes),
        rollouts=tuple(rollouts),
        expected_impacts=derive_impacts(rollouts, changes, pods, end),
        deploy_events=deploy_events(rollouts, config.seed),
    )


def simulate_pods(config: SimConfig = SimConfig()) -> Fleet:  # noqa: B008 - frozen, safe default
    """The pods of :func:`simulate`'s fleet without the ground truth derived from them (no
    expected changes, impacts or events): what the metrics need, in half the time."""
    pods, rollouts, notes = _run(config)
    return Fleet(
        config=config,
        pods=tuple(pods),
        expected_changes=(),
        notes=tuple(notes),
        rollouts=tuple(rollouts),
    )


def _run(config: SimConfig) -> tuple[list[PodRun], list[ScriptedRollout], list[ScenarioNote]]:
    _check(config)
    notes: list[ScenarioNote] = []
    clusters: list[ClusterSpec]
    specs: list[WorkloadSpec]
    end = config.start + config.days * 86400.0
    if config.scale == "demo":
        clusters = clusters_for(config.clusters)
        specs, notes = demo_workloads(clusters, config.start, hostile=config.hostile, end=end)
    else:
        clusters = bench_clusters(config)
        specs = bench_workloads(config, clusters)
    by_name = {c.name: c for c in clusters}
    pods: list[PodRun] = []
    rollouts: list[ScriptedRollout] = []
    for cl in clusters:
        drains = node_drains(cl, config.seed, config.start, config.days)
        for spec in (s for s in specs if s.cluster == cl.name):
            w_pods, w_rollouts = run_workload(
                spec,
                by_name[spec.cluster],
                drains,
                seed=config.seed,
                sim_start=config.start,
                sim_end=end,
            )
            pods.extend(w_pods)
            rollouts.extend(w_rollouts)
    pods.sort(key=lambda p: (p.cluster, p.namespace, p.workload_kind, p.workload, p.start, p.pod))
    rollouts.sort(key=lambda r: (r.at, r.cluster, r.namespace, r.workload_kind, r.workload))
    notes = [n for n in notes if n.at < end]
    notes.sort(key=lambda n: (n.at, n.cluster, n.namespace, n.workload))
    return pods, rollouts, notes
