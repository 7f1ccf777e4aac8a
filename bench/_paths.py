"""Where things are, and access to the test servers in ``tests/servers.py``."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
TESTS = REPO / "tests"
SIM_DIR = REPO / "src" / "imagetrail" / "sim"

# tests/servers.py starts the real Prometheus; it depends on nothing of imagetrail, and is
# meant to be shared with the benchmarks.
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
