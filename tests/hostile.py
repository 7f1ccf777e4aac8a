"""A ledger whose label values try to become markup or script on the web pages.

Kubernetes label values are attacker-controlled for anyone who can create a pod (and an image
reference is whatever the pod spec says), so the pages must show every one of them as text.
"""

from __future__ import annotations

from pathlib import Path

from imagetrail.ledger import Ledger
from imagetrail.model import Span
from imagetrail.service.sync import rederive_changes

PAYLOAD = "<img src=x onerror=alert(1)>"
# Markup plotly itself renders in chart labels and hover text (no "/": image references and
# workload ids are split on it).
PLOTLY_MARKUP = "<b>bold<br>"
# An image reference and a pod name with the payloads, both quotes and a newline.
IMAGE_OLD = f"evil.example/app:1.0{PAYLOAD}\"'\n{PLOTLY_MARKUP}next"
IMAGE_NEW = f"evil.example/app:2.0{PAYLOAD}\"'\n{PLOTLY_MARKUP}next"
POD = f"web-{PAYLOAD}\"'\n<i>it</i>-pod"
CONTAINER = f'app{PAYLOAD}<a href="javascript:alert(3)">link</a>'
WORKLOAD = "shop<script>alert(2)"
CLUSTER = "hostile"
NAMESPACE = "web"
WORKLOAD_ID = f"{CLUSTER}/{NAMESPACE}/Deployment/{WORKLOAD}"
SYNC_KEY = "hostile|test|"
HOUR = 3600.0


def build_hostile_ledger(path: Path, *, end: float) -> Ledger:
    """A fresh ledger at ``path``: one hostile workload upgrading IMAGE_OLD → IMAGE_NEW.

    Two pods run the old image for most of the last day, then two new pods take over, so
    every page (heatmap rows, versions, the workload timeline per pod, changes) shows the
    hostile strings; ``end`` is the end of the recorded data.
    """
    start = end - 24 * HOUR
    switch = end - 6 * HOUR

    def span(pod: str, image: str, first: float, last: float, digest: str) -> Span:
        return Span(
            cluster=CLUSTER,
            namespace=NAMESPACE,
            workload_kind="Deployment",
            workload=WORKLOAD,
            pod=pod,
            container=CONTAINER,
            image=image,
            digest=digest,
            first_seen=first,
            last_seen=last,
            pod_uid=f"uid-{pod[-8:]}-{first:.0f}",
        )

    old = "sha256:" + "a" * 64
    new = "sha256:" + "b" * 64
    spans = [
        span(POD, IMAGE_OLD, start, switch + 120, old),
        span(POD + "2", IMAGE_OLD, start, switch + 180, old),
        span(POD + "3", IMAGE_NEW, switch, end, new),
        span(POD + "4", IMAGE_NEW, switch + 60, end, new),
    ]
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    ledger = Ledger.open(path)
    ledger.merge_spans(spans, sync_key=SYNC_KEY, synced_from=start, synced_until=end)
    rederive_changes(ledger, tolerance=60)
    return ledger
