"""A sync killed (SIGKILL) after its last chunk committed, before it derived the changes:
the next read answers the clean run's changes (spans mark the changes stale in their own
transaction; docs/ledger.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).with_name("imagetrail")
# The real CLI, with the change derivation replaced by the process killing itself: the kill
# lands exactly between the last chunk's commit and the derivation, with no hook in the code.
KILLED_SYNC = """
import os, signal, sys
import imagetrail.service.sync
imagetrail.service.sync.rederive_changes = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
from imagetrail.cli import main
sys.argv = ["imagetrail", *sys.argv[1:]]
main()
"""


def test_changes_after_a_kill_before_derivation_equal_the_clean_run(
    sim_prometheus: tuple[str, float, float], tmp_path: Path
) -> None:
    url, start, end = sim_prometheus
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    args = ["sync", "--prometheus", url, "--since", str(start), "--until", str(end)]

    clean = tmp_path / "clean.db"
    done = subprocess.run(
        [str(BIN), *args, "--ledger", str(clean)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr

    killed = tmp_path / "killed.db"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_SYNC, *args, "--ledger", str(killed)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    def changes(ledger: Path) -> str:
        run = subprocess.run(
            [str(BIN), "changes", "--from", str(start), "--to", str(end), "-f", "json"],
            capture_output=True,
            text=True,
            env={**env, "IMAGETRAIL_LEDGER": str(ledger)},
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    clean_changes = changes(clean)
    assert clean_changes.count('"kind"') > 20
    assert changes(killed) == clean_changes
