"""The ``impact`` signal: what change-impact analysis reads for app-metric containers.

Only containers with an :class:`~imagetrail.sim.types.AppProfile` get these series. Every
level comes from the container's version profile plus per-scrape noise, so two versions
with equal profiles cannot be told apart and a worse profile shows in every signal:

* ``container_cpu_cfs_periods_total`` / ``..._throttled_periods_total``: cAdvisor labels,
  per runtime container (a restart is a new ``id``), 10 periods a second, the profile's
  share of them throttled.
* ``container_oom_events_total``: cAdvisor label names, one series per pod container for
  as long as it runs (``id`` the pod's cgroup, ``name`` empty), +1 at each OOM kill
  (``OOM_BACKOFF`` seconds before the in-place restart), so ``increase()`` works on it.
* ``http_requests_total{code="200"|"500"}``: the app's own counter as scraped through pod
  annotations (``job="orders"``, ``instance`` the pod IP); it restarts from 0 with the
  process.
* ``ALERTS{alertname="KubePodCrashLooping",alertstate="firing"}``: 1 from a container's
  second restart until it stops running, absent otherwise.
"""

from __future__ import annotations

from imagetrail.sim._series import (
    OOM_BACKOFF,
    Kind,
    Series,
    _h,
    _ip,
    _offset,
    container_id,
    kubelet_target,
    pod_cgroup,
    render,
    segments,
)
from imagetrail.sim.types import PodRun, reported_image

_CFS_PER_SECOND = 10.0  # the default CFS period is 100 ms
_APP_JOB = "orders"  # the job name the pod-annotation scrape config gives the app metrics


def impact_series(pod: PodRun, end: float, step_ms: int, out: dict[str, list[Series]]) -> None:
    """Append the ``impact`` series of ``pod``'s app-metric containers to ``out``."""
    apps = [c for c in pod.containers if c.profile is not None and not c.init]
    if not apps:
        return
    step = step_ms / 1000.0
    kubelet = kubelet_target(pod)
    k_off = _offset(pod.cluster + kubelet["instance"], step_ms)
    cgroup = pod_cgroup(pod)
    ident = {"namespace": pod.namespace, "pod": pod.pod}
    app_instance = f"{_ip(pod.cluster, pod.uid)}:8080"
    app_target = {"cluster": pod.cluster, "job": _APP_JOB, "instance": app_instance}
    app_off = _offset(pod.cluster + app_instance, step_ms)
    rules_off = _offset(pod.cluster + "prometheus-rules", step_ms)
    for c in apps:
        prof = c.profile
        assert prof is not None
        c_end = end if c.end is None else c.end
        if c_end <= c.start:
            continue
        image = reported_image(c)
        for n, a, b in segments(c, end):
            if b <= a:
                continue
            cid = container_id(pod, c, n)
            labels = {"container": c.name, "id": f"{cgroup}/{cid}", "image": image, "name": cid}
            for family, rate in (
                ("container_cpu_cfs_periods_total", _CFS_PER_SECOND),
                ("container_cpu_cfs_throttled_periods_total", _CFS_PER_SECOND * prof.throttled),
            ):
                text = render(labels | ident | kubelet)
                key = _h(family, text)
                out[family].append(Series(text, a, b, k_off, Kind.NCOUNTER, rate, step, key=key))
        kills = tuple(r - OOM_BACKOFF for r in c.restarts) if prof.restart_every else ()
        oom = {"container": c.name, "id": cgroup, "image": image, "name": ""} | ident | kubelet
        out["container_oom_events_total"].append(
            Series(render(oom), c.start, c_end, k_off, Kind.STEPS, points=kills)
        )
        for code, rate in (
            ("200", prof.rps * (1 - prof.error_ratio)),
            ("500", prof.rps * prof.error_ratio),
        ):
            text = render(app_target | ident | {"container": c.name, "code": code})
            out["http_requests_total"].append(
                Series(
                    text,
                    c.start,
                    c_end,
                    app_off,
                    Kind.NCOUNTER,
                    rate,
                    step,
                    c.restarts,
                    -_h(text) - 1,
                )
            )
        if len(c.restarts) >= 2:
            alert = (
                {
                    "alertname": "KubePodCrashLooping",
                    "alertstate": "firing",
                    "severity": "warning",
                    "cluster": pod.cluster,
                }
                | ident
                | {"container": c.name}
            )
            out["ALERTS"].append(Series(render(alert), c.restarts[1], c_end, rules_off, Kind.CONST))
