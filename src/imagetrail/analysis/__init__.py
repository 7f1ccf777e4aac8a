"""Analysis: pure functions from ledger spans to answers. No I/O happens here.

Inputs are :class:`imagetrail.model.Span` values; outputs are the model's answer types.
Every function is deterministic and gives the same result for any order of its input.
The definitions are spelled out in docs/analysis.md.
"""

from imagetrail.analysis._common import still_running
from imagetrail.analysis.audit import audit
from imagetrail.analysis.changes import detect_changes
from imagetrail.analysis.distribution import distribution, workloads
from imagetrail.analysis.heatmap import bucket_times, default_step, heatmap, row_details
from imagetrail.analysis.history import history
from imagetrail.analysis.kinds import classify
from imagetrail.analysis.timeline import Segment, current_version, segments

__all__ = [
    "Segment",
    "audit",
    "bucket_times",
    "classify",
    "current_version",
    "default_step",
    "detect_changes",
    "distribution",
    "heatmap",
    "history",
    "row_details",
    "segments",
    "still_running",
    "workloads",
]
