"""A seeded, deterministic simulator of a Kubernetes fleet, with its ground truth.

``simulate(SimConfig())`` gives the hand-written demo fleet; ``SimConfig(scale="bench",
containers=N)`` a generated one. ``write_openmetrics`` and ``write_vm_import`` stream what
cAdvisor and kube-state-metrics would have exposed (and, signal ``impact``, the app
metrics of the ``orders`` namespace), for backfilling real servers. ``Fleet`` carries the
ground truth: expected changes, expected impacts, CI/CD events; ``expected_dora`` the DORA
figures. See docs/simulator.md.
"""

from imagetrail.sim.fleet import simulate
from imagetrail.sim.openmetrics import write_openmetrics, write_vm_import
from imagetrail.sim.scenario import HOSTILE
from imagetrail.sim.truth import expected_dora
from imagetrail.sim.types import (
    DEFAULT_START,
    AppProfile,
    ContainerRun,
    DeployEvent,
    ExpectedChange,
    ExpectedDora,
    ExpectedImpact,
    Fleet,
    PodRun,
    ScenarioNote,
    ScriptedRollout,
    SimConfig,
)

__all__ = [
    "DEFAULT_START",
    "HOSTILE",
    "AppProfile",
    "ContainerRun",
    "DeployEvent",
    "ExpectedChange",
    "ExpectedDora",
    "ExpectedImpact",
    "Fleet",
    "PodRun",
    "ScenarioNote",
    "ScriptedRollout",
    "SimConfig",
    "expected_dora",
    "simulate",
    "write_openmetrics",
    "write_vm_import",
]
