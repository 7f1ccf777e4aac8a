"""The table commands of tests/test_tables.py and of docs/cli.md's examples: fixed ranges on a
demo ledger with a fixed end, so that their output is the same on every run."""

from __future__ import annotations

from pathlib import Path

from clirun import invoke
from imagetrail.timeutil import format_time

END = 1_795_996_800.0  # 2026-11-29T18:00:00Z, on the hour as the demo's end is
DAY = 86400.0


def _range(days: float) -> list[str]:
    return ["--from", format_time(END - days * DAY), "--to", format_time(END)]


TABLES: dict[str, list[str]] = {
    "versions": ["versions", "--at", format_time(END - 60)],
    "changes": ["changes", *_range(3)],
    "history": ["history", "prod-eu/shop/cart", *_range(14)],
    "audit": ["audit", *_range(1)],
    "workloads": ["workloads", "--at", format_time(END - 60)],
    "dora": ["dora", *_range(14)],
    "impact": ["impact", *_range(7), "-n", "orders"],
    "capacity": ["capacity", "prod-eu/shop/cart", *_range(7)],
}


def run_table(ledger: Path, name: str, width: int, *extra: str) -> str:
    """``imagetrail NAME …`` as a table ``width`` columns wide, trailing blanks stripped."""
    done = invoke(
        [*TABLES[name], *extra], {"IMAGETRAIL_LEDGER": str(ledger), "COLUMNS": str(width)}
    )
    assert done.code == 0, done.err
    return "".join(line.rstrip() + "\n" for line in done.out.splitlines())
