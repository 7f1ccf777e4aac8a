"""Real scrapes (fixtures/nri-kubernetes) replayed as a short timeline for a real Prometheus."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from servers import split_sample_line

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "nri-kubernetes"
SCRAPES = {
    "kind-1-31": ["k8s_1_31/kubelet_metrics_cadvisor.txt", "k8s_1_31/ksm_metrics.txt"],
    "kind-1-22": ["k8s_1_22/kubelet_metrics_cadvisor.txt", "k8s_1_22/ksm_metrics.txt"],
    "minikube-1-15": ["legacy/k8s_v1_15_kubelet_metrics_cadvisor.txt"],
}
KEEP = ("container_cpu_usage_seconds_total", "kube_pod_")


def read_scrape(path: Path) -> list[tuple[str, str, float]]:
    """(metric name, labels text without braces, value) for each sample line of a scrape."""
    out = []
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        series, value, _ = split_sample_line(line)
        name, _, labels = series.partition("{")
        if name.startswith(KEEP):
            out.append((name, labels.rstrip("}"), float(value)))
    return out


def write_replay(
    out: Path,
    *,
    start: float,
    minutes: int = 30,
    step: float = 30.0,
    clusters: Mapping[str, tuple[str, Sequence[tuple[int, int]]]] | None = None,
) -> Path:
    """Every scraped series repeated every ``step`` seconds for ``minutes``, one cluster label
    per scrape, as OpenMetrics for promtool (counters keep their value: the scrape is a still).

    ``clusters``: cluster label -> (a key of SCRAPES, the minute ranges ``[a, b]`` in which that
    cluster reports), for replays where a cluster goes silent or comes back."""
    plan = clusters or {name: (name, [(0, minutes)]) for name in SCRAPES}
    families: dict[str, list[tuple[str, float, tuple[tuple[int, int], ...]]]] = defaultdict(list)
    for cluster, (scrape, ranges) in plan.items():
        for name in SCRAPES[scrape]:
            for metric, labels, value in read_scrape(FIXTURES / name):
                joined = f'cluster="{cluster}"' + (f",{labels}" if labels else "")
                families[metric].append((joined, value, tuple(ranges)))
    minute_steps = int(minutes * 60 / step) + 1
    path = out / "replay.om.txt"
    with path.open("w") as f:
        for metric, series in sorted(families.items()):
            f.write(f"# TYPE {metric} unknown\n")
            for labels, value, ranges in sorted(set(series)):
                for i in range(minute_steps):
                    if any(a * 60 <= i * step <= b * 60 for a, b in ranges):
                        f.write(f"{metric}{{{labels}}} {value} {start + i * step:.3f}\n")
        f.write("# EOF\n")
    return path
