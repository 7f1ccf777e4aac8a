"""The hand-written demo fleet: what runs where, and what happens to it over the period.

Every event time is ``t0 + day * 86400`` with fractional days, so ``4.45`` is day 4 at
10:48 UTC. Rollouts happen during the working day (08:00-18:00 UTC) and node drains at
night (02:00-04:30 UTC), so a workload is never drained while it rolls out. The first
cluster is the "primary" production cluster (it gets the failed rollout, the tag re-push,
the added and the removed workload); the second follows it a day later; any further
cluster is staging and runs a day ahead. The primary cluster also has the ``orders``
namespace, whose workloads carry app metrics (signal ``impact``) for change-impact
analysis: a bad upgrade and its rollback, an upgrade without effect and one too close to
the end of the simulation to judge. Its ``logistics`` namespace holds the rollouts whose new
pods wait (kube-state-metrics waiting reasons): a tag that does not exist, undone; a
crash-looping release, rolled back; a missing secret, fixed in place; and a private image
still failing to pull when the simulation ends.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

from imagetrail.sim.engine import ClusterSpec, ContainerSpec, Rollout, WorkloadSpec
from imagetrail.sim.types import AppProfile, ScenarioNote

DAY = 86400.0

#: The payload of the hostile workload: markup, quotes, a backslash, a newline, unicode.
HOSTILE = "<img src=x onerror=alert(1)>\"'\\\nü✓"

# The digest metrics-server is pinned to in its pod spec (as the real manifests do).
_METRICS_SERVER = (
    "registry.k8s.io/metrics-server/metrics-server:v0.7.2"
    "@sha256:ffcb2bf004d6aa0a17d90e0247cf94f2865c8901dcab4427034c341951c239f9"
)

Changes = Mapping[str, str | tuple[str, int]]
Profiles = Mapping[str, AppProfile]


def _c(name: str, image: str, *, init: bool = False, bare_id: bool = False) -> ContainerSpec:
    return ContainerSpec(name=name, image=image, init=init, bare_id=bare_id)


def _apply(template: tuple[ContainerSpec, ...], changes: Changes) -> tuple[ContainerSpec, ...]:
    """A new template: ``changes`` maps container name to an image, or (image, push)."""
    out = []
    for c in template:
        new = changes.get(c.name)
        if new is None:
            out.append(c)
        elif isinstance(new, tuple):
            out.append(replace(c, image=new[0], push=new[1]))
        else:
            out.append(replace(c, image=new, push=0))
    return tuple(out)


def _profiled(template: tuple[ContainerSpec, ...], profiles: Profiles) -> tuple[ContainerSpec, ...]:
    """Each container gets the profile of its image (a version keeps its behaviour)."""
    return tuple(replace(c, profile=profiles.get(c.image, c.profile)) for c in template)


@dataclass(frozen=True, slots=True)
class Attempt:
    """A rollout whose new pods wait (see :class:`~imagetrail.sim.engine.Rollout`):
    ``reason`` ``ImagePullBackOff`` or ``CrashLoopBackOff`` undone ``undo_after`` seconds
    later (None: still waiting at the end), or ``CreateContainerConfigError`` fixed in place
    ``fixed_after`` seconds later."""

    day: float
    changes: Changes
    reason: str
    why: str  # for the note
    undo_after: float | None = None
    fixed_after: float | None = None


class _Script:
    """Collects one cluster's workloads and the notes describing their events."""

    def __init__(self, cluster: ClusterSpec, t0: float, shift: float) -> None:
        self.cluster = cluster
        self.t0 = t0
        self.shift = shift  # days; secondary prod lags, staging leads
        self.specs: list[WorkloadSpec] = []
        self.notes: list[ScenarioNote] = []

    def at(self, day: float, *, shifted: bool = True) -> float:
        d = day + self.shift if shifted else day
        return self.t0 + max(d, 0.35) * DAY

    def add(
        self,
        ns: str,
        kind: str,
        name: str,
        containers: tuple[ContainerSpec, ...],
        steps: tuple[tuple[float, Changes], ...] = (),
        *,
        fail: tuple[float, Changes] | None = None,
        bad: tuple[float, Changes] | None = None,
        undo_after: float = 3 * 3600.0,
        profiles: Profiles | None = None,
        attempt: Attempt | None = None,
        **kw: object,
    ) -> None:
        """Add a workload whose template changes at each ``(day, changes)`` step.

        ``fail``: a rollout whose pods crash-loop, undone 20-25 minutes later; ``bad``: a
        rollout that completes but whose version misbehaves (its profile), undone
        ``undo_after`` seconds later (no other step may fall in between). ``profiles``
        maps an image to how that version behaves (app metrics). ``attempt``: a rollout
        whose new pods wait (a missing tag, a crash loop, a missing secret).
        """
        profiles = profiles or {}
        containers = _profiled(containers, profiles)
        template = containers
        rollouts = []
        events = [(d, ch, "rollout") for d, ch in steps]
        if fail is not None:
            events.append((fail[0], fail[1], "failed"))
        if bad is not None:
            events.append((bad[0], bad[1], "bad"))
        if attempt is not None:
            events.append((attempt.day, attempt.changes, "attempt"))
        for day, changes, step in sorted(events, key=lambda e: e[0]):
            new = _profiled(_apply(template, changes), profiles)
            at = self.at(day, shifted=step == "rollout")
            what = ", ".join(f"{c.name} {c.image}" for c in new if c not in template)
            if step == "failed":
                rollouts.append(Rollout(at=at, containers=new, fail=True))
                self._note("failed-rollout", ns, name, at, f"{what} crash-loops; rolled back")
                self._note("rollback", ns, name, at + 1200.0, "kubectl rollout undo")
            elif step == "attempt" and attempt is not None:
                template = self._attempt(rollouts, ns, name, at, attempt, template, new, what)
            elif step == "bad":
                undo = round(at + undo_after, 3)
                rollouts.append(Rollout(at=at, containers=new, bad=True))
                rollouts.append(Rollout(at=undo, containers=template, undo=True))
                self._note("bad-rollout", ns, name, at, f"{what} restarts, OOM kills, errors")
                self._note("rollback", ns, name, undo, "kubectl rollout undo")
            else:
                rollouts.append(Rollout(at=at, containers=new))
                repush = any(isinstance(v, tuple) for v in changes.values())
                self._note("tag-repush" if repush else "rollout", ns, name, at, what)
                template = new
        spec = WorkloadSpec(
            cluster=self.cluster.name,
            namespace=ns,
            kind=kind,
            name=name,
            containers=containers,
            rollouts=tuple(rollouts),
            **kw,  # type: ignore[arg-type]
        )
        if spec.created is not None:
            self._note("added", ns, name, spec.created, "workload created")
        if spec.deleted is not None:
            self._note("removed", ns, name, spec.deleted, "workload deleted")
        self.specs.append(spec)

    def _attempt(
        self,
        rollouts: list[Rollout],
        ns: str,
        name: str,
        at: float,
        a: Attempt,
        template: tuple[ContainerSpec, ...],
        new: tuple[ContainerSpec, ...],
        what: str,
    ) -> tuple[ContainerSpec, ...]:
        """Script one attempt; the template that holds after it."""
        if a.fixed_after is not None:
            rollouts.append(
                Rollout(at=at, containers=new, reason=a.reason, fixed_after=a.fixed_after)
            )
            minutes = round(a.fixed_after / 60)
            text = f"{what}: {a.reason} ({a.why}) for {minutes} min, fixed in place"
            self._note("rollout", ns, name, at, text)
            return new
        stuck = a.undo_after is None
        rollouts.append(
            Rollout(
                at=at,
                containers=new,
                fail=True,
                reason=a.reason,
                rollback_after=0.0 if a.undo_after is None else a.undo_after,
                stuck=stuck,
            )
        )
        outcome = "still failing at the end" if stuck else "rolled back"
        self._note("failed-rollout", ns, name, at, f"{what}: {a.reason} ({a.why}); {outcome}")
        if a.undo_after is not None:
            self._note("rollback", ns, name, at + a.undo_after, "kubectl rollout undo")
        return template

    def _note(self, kind: str, ns: str, name: str, at: float, text: str) -> None:
        self.notes.append(ScenarioNote(kind, self.cluster.name, ns, name, at, text))


def clusters_for(names: tuple[str, ...]) -> list[ClusterSpec]:
    """Nodes of each demo cluster: four workers in production, two elsewhere."""
    out = []
    for i, name in enumerate(names):
        n = 4 if i < 2 else 2
        workers = tuple(f"{name}-worker-{k}" for k in range(1, n + 1))
        out.append(ClusterSpec(name, workers, f"{name}-control-plane"))
    return out


def node_drains(cluster: ClusterSpec, seed: int, t0: float, days: float) -> list[tuple[float, str]]:
    """Each worker is drained every 1-3 days, at night (02:00-04:30 UTC)."""
    rng = random.Random(f"{seed}:drains:{cluster.name}")
    out = []
    for node in cluster.workers:
        day = rng.uniform(0.5, 2.0)
        while day < days:
            at = t0 + int(day) * DAY + rng.uniform(2.0, 4.5) * 3600.0
            out.append((round(at, 3), node))
            day = int(day) + rng.uniform(1.0, 3.0)
    return sorted(out)


def demo_workloads(
    clusters: list[ClusterSpec], t0: float, *, hostile: bool, end: float | None = None
) -> tuple[list[WorkloadSpec], list[ScenarioNote]]:
    """The demo fleet's workloads, cluster by cluster (``end``: of the simulation)."""
    specs: list[WorkloadSpec] = []
    notes: list[ScenarioNote] = []
    for i, cluster in enumerate(clusters):
        shift = 0.0 if i == 0 else (1.0 + 2 / 24 if i == 1 else -1.0)
        s = _Script(cluster, t0, shift)
        _shop(s, primary=i == 0, staging=i >= 2)
        _payments(s, primary=i == 0)
        _platform(s, primary=i == 0)
        _monitoring(s)
        _kube_system(s)
        _data(s, primary=i == 0)
        if i == 0:
            _orders(s, t0 + 14 * DAY if end is None else end)
            _logistics(s, t0 + 14 * DAY if end is None else end)
        if hostile and i == 0:
            s.add(
                "shop",
                "Deployment",
                "promo" + HOSTILE,
                (_c("promo" + HOSTILE, "ghcr.io/acme/promo:1.0" + HOSTILE),),
                replicas=1,
            )
        specs.extend(s.specs)
        notes.extend(s.notes)
    return specs, notes


def _shop(s: _Script, *, primary: bool, staging: bool) -> None:
    istio = "docker.io/istio/proxyv2:1.22.3"
    envoy = "envoyproxy/envoy:v1.31.2"
    s.add(
        "shop",
        "Deployment",
        "frontend",
        (
            _c("istio-init", istio, init=True),
            _c("frontend", "ghcr.io/acme/frontend:3.14.2"),
            _c("istio-proxy", istio),
        ),
        (
            (1.4, {"frontend": "ghcr.io/acme/frontend:3.15.0"}),
            (5.6, {"frontend": "ghcr.io/acme/frontend:3.15.1"}),
            (
                8.5,
                {
                    "istio-init": "docker.io/istio/proxyv2:1.23.2",
                    "istio-proxy": "docker.io/istio/proxyv2:1.23.2",
                },
            ),
            (10.4, {"frontend": "ghcr.io/acme/frontend:3.16.0"}),
        ),
        replicas=4,
    )
    cart = (_c("cart", "ghcr.io/acme/cart:2.4.0"), _c("envoy", envoy))
    if primary:
        s.add(
            "shop",
            "Deployment",
            "cart",
            cart,
            ((7.6, {"cart": "ghcr.io/acme/cart:2.5.1"}),),
            fail=(4.45, {"cart": "ghcr.io/acme/cart:2.5.0"}),
            replicas=4,
        )
    else:
        steps: tuple[tuple[float, Changes], ...] = ((7.6, {"cart": "ghcr.io/acme/cart:2.5.1"}),)
        if staging:
            steps = ((4.4, {"cart": "ghcr.io/acme/cart:2.5.0"}), *steps)
        s.add("shop", "Deployment", "cart", cart, steps, replicas=2 if staging else 4)
    s.add(
        "shop",
        "Deployment",
        "catalog",
        (_c("catalog", "ghcr.io/acme/catalog:1.9.3"),),
        (
            (2.45, {"catalog": "ghcr.io/acme/catalog:1.10.0"}),
            # a hotfix built from the 1.9 branch: a downgrade, not a rollback
            (6.4, {"catalog": "ghcr.io/acme/catalog:1.9.4"}),
        ),
        replicas=3,
    )
    s.add(
        "shop",
        "Deployment",
        "checkout",
        (_c("checkout", "ghcr.io/acme/checkout:5.2.0"), _c("envoy", envoy)),
        ((9.45, {"envoy": "envoyproxy/envoy:v1.32.1"}),),
        replicas=3,
    )
    s.add(
        "shop",
        "StatefulSet",
        "redis",
        (_c("redis", "redis:8.2.9"),),
        ((3.6, {"redis": "redis:8.4.6"}),),
        replicas=3,
    )
    s.add(
        "shop",
        "Deployment",
        "search",
        (_c("search", "registry.internal:5000/shop/search:latest"),),
        replicas=2,
    )
    s.add(
        "shop",
        "Deployment",
        "storefront-static",
        (_c("nginx", "nginx:1.29.4"),),
        ((2.6, {"nginx": "nginx:1.30.4"}), (11.45, {"nginx": "nginx:1.31.4"})),
        replicas=2,
    )


def _payments(s: _Script, *, primary: bool) -> None:
    api = "registry.internal:5000/payments/api"
    s.add(
        "payments",
        "Deployment",
        "payments-api",
        (_c("api", f"{api}:4.2.0"),),
        ((5.4, {"api": f"{api}:4.3.0"}), (12.6, {"api": f"{api}:4.3.1"})),
        replicas=3,
    )
    ledger = "registry.internal:5000/payments/ledger:2.1"
    # The 2.1 tag is re-pushed (same tag, new digest) and the workload restarted onto it.
    s.add(
        "payments",
        "Deployment",
        "ledger-worker",
        (_c("ledger", ledger),),
        ((6.58, {"ledger": (ledger, 1)}),) if primary else (),
        replicas=2,
    )
    s.add(
        "payments",
        "StatefulSet",
        "postgres",
        (_c("init-permissions", "busybox:1.36.1", init=True), _c("postgres", "postgres:17.10")),
        ((9.6, {"postgres": "postgres:17.11"}),),
        replicas=2,
    )
    s.add(
        "payments",
        "CronJob",
        "settlement",
        (_c("settle", "ghcr.io/acme/settlement:1.4.2"),),
        ((4.5, {"settle": "ghcr.io/acme/settlement:1.5.0"}),),
        period=3600.0,
        run_seconds=(120.0, 240.0),
    )
    s.add(
        "payments",
        "Deployment",
        "fraud-model",
        (_c("model", "ghcr.io/acme/fraud-model:2026.10.3"),),
        ((8.4, {"model": "ghcr.io/acme/fraud-model:2026.11.1"}),),
        replicas=2,
    )


def _platform(s: _Script, *, primary: bool) -> None:
    s.add(
        "platform",
        "Deployment",
        "ingress-nginx-controller",
        (_c("controller", "registry.k8s.io/ingress-nginx/controller:v1.11.2"),),
        ((6.45, {"controller": "registry.k8s.io/ingress-nginx/controller:v1.11.3"}),),
        replicas=2,
    )
    # Never updated over the whole period: the audit's "stale image" example.
    s.add(
        "platform",
        "Deployment",
        "cert-manager",
        (_c("cert-manager-controller", "quay.io/jetstack/cert-manager-controller:v1.15.3"),),
    )
    s.add(
        "platform",
        "Deployment",
        "external-dns",
        (_c("external-dns", "registry.k8s.io/external-dns/external-dns:v0.15.0"),),
    )
    if primary:
        s.add(
            "platform",
            "Deployment",
            "legacy-gateway",
            (_c("nginx", "nginx:1.26.2"),),
            replicas=2,
            deleted=s.at(7.5),
        )
        s.add(
            "platform",
            "Deployment",
            "feature-flags",
            (_c("flags", "ghcr.io/acme/flags:0.3.0"),),
            ((9.4, {"flags": "ghcr.io/acme/flags:0.3.1"}),),
            replicas=2,
            created=s.at(5.45),
        )


def _monitoring(s: _Script) -> None:
    s.add(
        "monitoring",
        "DaemonSet",
        "node-exporter",
        (_c("node-exporter", "quay.io/prometheus/node-exporter:v1.8.2"),),
        ((8.6, {"node-exporter": "quay.io/prometheus/node-exporter:v1.9.0"}),),
    )
    s.add(
        "monitoring",
        "DaemonSet",
        "fluent-bit",
        (_c("fluent-bit", "cr.fluentbit.io/fluent/fluent-bit:3.1.9"),),
    )
    s.add(
        "monitoring",
        "Deployment",
        "kube-state-metrics",
        (
            _c(
                "kube-state-metrics",
                "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0",
            ),
        ),
        (
            (
                10.6,
                {
                    "kube-state-metrics": (
                        "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.14.0"
                    )
                },
            ),
        ),
    )
    reloader = "quay.io/prometheus-operator/prometheus-config-reloader:v0.76.0"
    s.add(
        "monitoring",
        "StatefulSet",
        "prometheus-k8s",
        (
            _c("init-config-reloader", reloader, init=True),
            _c("prometheus", "quay.io/prometheus/prometheus:v2.54.1"),
            _c("config-reloader", reloader),
        ),
        ((4.6, {"prometheus": "quay.io/prometheus/prometheus:v2.55.0"}),),
        replicas=2,
    )
    s.add(
        "monitoring",
        "Deployment",
        "grafana",
        (_c("grafana", "grafana/grafana:11.2.0"),),
        ((3.45, {"grafana": "grafana/grafana:11.3.0"}),),
    )


def _kube_system(s: _Script) -> None:
    s.add(
        "kube-system",
        "Deployment",
        "coredns",
        (_c("coredns", "registry.k8s.io/coredns/coredns:v1.11.3"),),
        replicas=2,
    )
    s.add(
        "kube-system",
        "DaemonSet",
        "kube-proxy",
        (_c("kube-proxy", "registry.k8s.io/kube-proxy:v1.31.0"),),
        ((11.4, {"kube-proxy": "registry.k8s.io/kube-proxy:v1.31.2"}),),
    )
    # The runtime reports this container's image as a bare sha256 id (as in the fixtures).
    s.add(
        "kube-system",
        "Deployment",
        "metrics-server",
        (_c("metrics-server", _METRICS_SERVER, bare_id=True),),
    )
    cp = s.cluster.control_plane
    s.add(
        "kube-system", "StaticPod", "etcd", (_c("etcd", "registry.k8s.io/etcd:3.5.15-0"),), node=cp
    )
    for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        s.add(
            "kube-system",
            "StaticPod",
            comp,
            (_c(comp, f"registry.k8s.io/{comp}:v1.31.0"),),
            ((11.35, {comp: f"registry.k8s.io/{comp}:v1.31.2"}),),
            node=cp,
        )


def _data(s: _Script, *, primary: bool) -> None:
    s.add(
        "data",
        "StatefulSet",
        "kafka",
        (_c("kafka", "docker.io/bitnami/kafka:3.8.0"),),
        ((12.45, {"kafka": "docker.io/bitnami/kafka:3.8.1"}),),
        replicas=3,
    )
    s.add(
        "data",
        "CronJob",
        "nightly-etl",
        (_c("etl", "ghcr.io/acme/etl:1.8.0"),),
        ((6.5, {"etl": "ghcr.io/acme/etl:1.9.0"}),),
        period=DAY,
        run_seconds=(1200.0, 2400.0),
    )
    s.add(
        "data",
        "Deployment",
        "minio",
        (_c("minio", "quay.io/minio/minio:RELEASE.2024-10-13T13-34-11Z", bare_id=True),),
    )
    if primary:
        s.add(
            "data",
            "Job",
            "schema-migrate-20261104",
            (_c("migrate", "ghcr.io/acme/migrate:4.3.0"),),
            created=s.at(3.4),
            run_seconds=(120.0, 360.0),
        )


#: Per-version behaviour of the ``orders`` workloads (signal ``impact``). Versions of one
#: workload that share a profile are indistinguishable in the metrics but for the noise.
_API_OK = AppProfile(cpu=0.25, memory=180 * 2**20, throttled=0.02, rps=40.0, error_ratio=0.005)
_API_BAD = AppProfile(
    cpu=0.35,
    memory=252 * 2**20,  # +40 %
    throttled=0.2,
    rps=40.0,
    error_ratio=0.08,
    restart_every=(300.0, 900.0),
)
_WORKER = AppProfile(cpu=0.5, memory=300 * 2**20, throttled=0.05, rps=5.0, error_ratio=0.005)
_NOTIFIER = AppProfile(cpu=0.05, memory=64 * 2**20, throttled=0.01, rps=2.0, error_ratio=0.005)
_PRICING = AppProfile(cpu=0.15, memory=120 * 2**20, throttled=0.03, rps=25.0, error_ratio=0.005)


def _orders(s: _Script, end: float) -> None:
    """The primary cluster's ``orders`` namespace: app metrics and CI/CD events (days 12-14)."""
    api = "ghcr.io/acme/orders-api"
    s.add(
        "orders",
        "Deployment",
        "orders-api",
        (_c("api", f"{api}:1.8.0"),),
        ((12.35, {"api": f"{api}:1.8.1"}),),
        bad=(12.5, {"api": f"{api}:1.9.0"}),
        undo_after=3 * 3600.0,
        profiles={f"{api}:1.8.0": _API_OK, f"{api}:1.8.1": _API_OK, f"{api}:1.9.0": _API_BAD},
        replicas=4,
    )
    worker = "ghcr.io/acme/orders-worker"
    s.add(
        "orders",
        "Deployment",
        "orders-worker",
        (_c("worker", f"{worker}:2.3.0"),),
        ((13.4, {"worker": f"{worker}:2.4.0"}),),
        profiles={f"{worker}:2.3.0": _WORKER, f"{worker}:2.4.0": _WORKER},
        replicas=3,
    )
    notifier = "ghcr.io/acme/orders-notifier"
    s.add(
        "orders",
        "Deployment",
        "orders-notifier",
        (_c("notifier", f"{notifier}:0.9.2"),),
        # twenty minutes before the end: too little data after it to judge
        (((end - 1200.0 - s.t0) / DAY, {"notifier": f"{notifier}:0.9.3"}),),
        profiles={f"{notifier}:0.9.2": _NOTIFIER, f"{notifier}:0.9.3": _NOTIFIER},
        replicas=2,
    )
    pricing = "ghcr.io/acme/orders-pricing"
    s.add(
        "orders",
        "Deployment",
        "orders-pricing",
        (_c("pricing", f"{pricing}:1.2.0"),),
        ((12.4, {"pricing": f"{pricing}:1.3.0"}), (13.6, {"pricing": f"{pricing}:1.3.1"})),
        profiles=dict.fromkeys([f"{pricing}:{v}" for v in ("1.2.0", "1.3.0", "1.3.1")], _PRICING),
        replicas=2,
    )


def _logistics(s: _Script, end: float) -> None:
    """The primary cluster's ``logistics`` namespace: rollouts whose new pods wait."""
    acme = "ghcr.io/acme"
    s.add(
        "logistics",
        "Deployment",
        "dispatch",
        (_c("dispatch", f"{acme}/dispatch:1.12.0"),),
        attempt=Attempt(
            4.6,
            {"dispatch": f"{acme}/dispatch:1.13.0"},
            "CreateContainerConfigError",
            "secret dispatch-smtp not found",
            fixed_after=600.0,
        ),
        replicas=3,
    )
    s.add(
        "logistics",
        "Deployment",
        "tracking-api",
        (_c("api", f"{acme}/tracking-api:2.7.1"),),
        attempt=Attempt(
            5.6,
            {"api": f"{acme}/tracking-api:2.8.0"},
            "ImagePullBackOff",
            "tag not found: the pipeline pushed v2.8.0",
            undo_after=1500.0,
        ),
        replicas=4,
    )
    s.add(
        "logistics",
        "Deployment",
        "route-planner",
        (_c("planner", f"{acme}/route-planner:5.3.2"),),
        attempt=Attempt(
            6.45,
            {"planner": f"{acme}/route-planner:5.4.0"},
            "CrashLoopBackOff",
            "exits at start: a missing setting",
            undo_after=1200.0,
        ),
        replicas=4,
    )
    s.add(
        "logistics",
        "Deployment",
        "courier-gateway",
        (_c("gateway", f"{acme}/courier-gateway:0.14.2"),),
        attempt=Attempt(
            (end - 3 * 3600.0 - s.t0) / DAY,  # three hours before the end
            {"gateway": f"{acme}/courier-gateway:0.15.0"},
            "ImagePullBackOff",
            "pull access denied: a private package",
        ),
        replicas=2,
    )
