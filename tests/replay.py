"""Real scrapes (fixtures/nri-kubernetes) replayed as a short timeline for a real Prometheus."""

from __future__ import annotations

from collections import defaultdict
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


def write_replay(out: Path, *, start: float, minutes: int = 30, step: float = 30.0) -> Path:
    """Every scraped series repeated every ``step`` seconds for ``minutes``, one cluster label
    per scrape, as OpenMetrics for promtool (counters keep their value: the scrape is a still)."""
    families: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for cluster, files in SCRAPES.items():
        for name in files:
            for metric, labels, value in read_scrape(FIXTURES / name):
                joined = f'cluster="{cluster}"' + (f",{labels}" if labels else "")
                families[metric].append((joined, value))
    times = [start + i * step for i in range(int(minutes * 60 / step) + 1)]
    path = out / "replay.om.txt"
    with path.open("w") as f:
        for metric, series in sorted(families.items()):
            f.write(f"# TYPE {metric} unknown\n")
            for labels, value in sorted(set(series)):
                for t in times:
                    f.write(f"{metric}{{{labels}}} {value} {t:.3f}\n")
        f.write("# EOF\n")
    return path
