"""The table commands of tests/test_tables.py and of docs/cli.md's examples: fixed ranges on a
demo ledger with a fixed end, so that their output is the same on every run."""

from __future__ import annotations

import re
from pathlib import Path

from clirun import invoke
from imagetrail.timeutil import format_time

END = 1_795_996_800.0  # 2026-11-30T00:00:00Z, on the hour as the demo's end is
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


DOCS_ROWS = 10  # rows shown per table in docs/cli.md; the rest is "…"
_DOCS_BLOCK = re.compile(r"(<!-- table: (\w+) -->\n).*?(<!-- /table -->\n)", re.DOTALL)


def docs_block(ledger: Path, name: str) -> str:
    """The example of ``name`` in docs/cli.md: the command and its table at 100 columns."""
    lines = run_table(ledger, name, 100).splitlines()
    shown = lines[: DOCS_ROWS + 2] + (["…"] if len(lines) > DOCS_ROWS + 2 else [])
    command = " ".join(["$ COLUMNS=100 imagetrail", *TABLES[name]])
    return "```\n" + "\n".join([command, *shown]) + "\n```\n"


def render_docs(text: str, ledger: Path) -> str:
    """``text`` (docs/cli.md) with every ``<!-- table: NAME -->`` block generated afresh."""
    return _DOCS_BLOCK.sub(lambda m: m.group(1) + docs_block(ledger, m.group(2)) + m.group(3), text)
