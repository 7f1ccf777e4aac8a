"""Measuring one process: its wall time (from outside) and its peak RSS (from inside).

Peak RSS is the child's own ``VmHWM`` (``/proc/self/status``), read by the child when its
work is done. ``os.wait4``/``RUSAGE_CHILDREN`` would be simpler, but on Linux a child's
``ru_maxrss`` starts from its *parent's* high-water mark: ``exec`` keeps the largest RSS of
the memory map it replaces, and ``subprocess`` forks (or vforks) the benchmark process itself.
A ``python -c pass`` child of the benchmark then "peaks" at the benchmark's 200+ MiB.
``VmHWM`` belongs to the memory map, which ``exec`` makes new.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHILD_TIMEOUT = 1200.0  # seconds: a method that takes longer is broken, not slow


class ChildFailed(RuntimeError):
    """A measured process exited non-zero or ran past its time limit."""


def peak_rss_mib(status: Path = Path("/proc/self/status")) -> float:
    """This process' peak resident set size (``VmHWM``), in MiB."""
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"unexpected VmHWM unit in {status}: {line!r}")
            return int(value) / 1024
    raise ValueError(f"no VmHWM in {status}")


def measure(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = CHILD_TIMEOUT,
) -> float:
    """Run ``argv`` to its end; its wall time in seconds. Raises :class:`ChildFailed`.

    The child gets this environment without ``IMAGETRAIL_*`` settings, plus ``env``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGETRAIL_")} | dict(env or {})
    began = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise ChildFailed(f"{list(argv[:4])} ran past {timeout:.0f}s and was killed") from None
    wall = time.perf_counter() - began
    if code != 0:
        raise ChildFailed(f"{list(argv[:4])} exited with {code}")
    return wall


def report_header(
    benchmark: str,
    command: str,
    began: float,
    code: Mapping[str, Any],
    machine: Mapping[str, Any],
) -> dict[str, Any]:
    """The fields every results file opens with: what ran, when, how long, on what."""
    return {
        "benchmark": benchmark,
        "command": command,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_seconds": round(time.perf_counter() - began, 1),
        "imagetrail_code": code,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), **machine},
    }
