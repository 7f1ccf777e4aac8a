"""A seeded, deterministic simulator of a Kubernetes fleet, with its ground truth.

``simulate(SimConfig())`` gives the hand-written demo fleet; ``SimConfig(scale="bench",
containers=N)`` a generated one. ``write_openmetrics`` and ``write_vm_import`` stream what
cAdvisor and kube-state-metrics would have exposed, for backfilling real servers.
See docs/simulator.md.
"""

from imagetrail.sim.fleet import simulate
from imagetrail.sim.openmetrics import write_openmetrics, write_vm_import
from imagetrail.sim.scenario import HOSTILE
from imagetrail.sim.types import (
    DEFAULT_START,
    ContainerRun,
    ExpectedChange,
    Fleet,
    PodRun,
    ScenarioNote,
    SimConfig,
)

__all__ = [
    "DEFAULT_START",
    "HOSTILE",
    "ContainerRun",
    "ExpectedChange",
    "Fleet",
    "PodRun",
    "ScenarioNote",
    "SimConfig",
    "simulate",
    "write_openmetrics",
    "write_vm_import",
]
