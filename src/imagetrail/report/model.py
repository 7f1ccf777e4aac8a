"""The report as data: frozen values that the HTML, Markdown and chat renderers all read."""

from __future__ import annotations

from dataclasses import dataclass

from imagetrail.model import Change, Verdict, VersionCount

# Why a change is listed among the notable ones, in the order they are listed.
NOTABLE_REASONS = ("failed", "rollback", "regression", "downgrade", "tag-repush", "other")


@dataclass(frozen=True, slots=True)
class Summary:
    """The numbers at the top of the report.

    ``regressions`` is None when impact was not available (no Prometheus, or it failed).
    """

    changes: int
    workloads_changed: int
    rollbacks: int
    regressions: int | None
    stale_images: int
    floating_images: int
    failed_rollouts: int = 0  # failed or stuck rollouts started in the range
    stuck_rollouts: int = 0  # of those, still stuck at the end of the data


@dataclass(frozen=True, slots=True)
class ReportChange:
    """A change as listed in the report, with its verdict when impact was computed."""

    change: Change
    verdict: Verdict | None
    reason: str  # one of NOTABLE_REASONS: why it is listed where it is


@dataclass(frozen=True, slots=True)
class StaleImage:
    """A workload container running the same version longer than ``report_stale_after``."""

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    container: str
    image: str
    running_since: float
    age: float  # seconds at the end of the report's range


@dataclass(frozen=True, slots=True)
class FloatingImage:
    """A running image whose reference has the ``latest`` tag or no tag at all."""

    image: str
    problem: str  # "latest tag" or "no tag"
    containers: int
    workloads: tuple[str, ...]  # Workload.id values, sorted


@dataclass(frozen=True, slots=True)
class NamespaceSection:
    """What changed in one namespace of one cluster, and which versions run there."""

    cluster: str
    namespace: str
    changes: tuple[ReportChange, ...]  # newest first, capped
    changes_total: int
    versions: tuple[VersionCount, ...]  # at the end of the range, most containers first, capped
    versions_total: int


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one report says; ``heatmap_png`` is None when nothing ran in the range."""

    generated: float
    start: float
    end: float  # the instant "running now" refers to (end of the range or of the data)
    scope: str  # the filters, in words ("all clusters" when none)
    stale_after: float
    summary: Summary
    notable: tuple[ReportChange, ...]
    notable_total: int
    stale: tuple[StaleImage, ...]
    floating: tuple[FloatingImage, ...]
    namespaces: tuple[NamespaceSection, ...]
    heatmap_png: bytes | None
    heatmap_rows_hidden: int  # images left out of the picture to keep it readable
    impact_note: str  # says whether the verdicts were computed, and if not, why
    link: str | None  # public_url of the web UI, when set
    # Rollouts whose new pods never ran (failed) or do not run yet (stuck), newest first, capped.
    failed: tuple[Change, ...] = ()
