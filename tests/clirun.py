"""Running the real CLI entry point in-process, and the one-error-line contract."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from imagetrail import cli

RUNNER = CliRunner()


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """The output parsed as JSON: any shape (the test asserts the one it expects)."""
        assert self.code == 0, self.err
        return json.loads(self.out)

    def csv(self) -> list[dict[str, str]]:
        assert self.code == 0, self.err
        return list(csv.DictReader(io.StringIO(self.out)))


def invoke(args: Sequence[str], env: Mapping[str, str | None] | None = None) -> Run:
    """Run ``imagetrail ARGS`` through the console entry point, in-process."""
    # No setting may leak in from the developer's environment.
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("IMAGETRAIL_")}
    clean["COLUMNS"] = "250"  # rich folds long cells at 80 columns otherwise
    with RUNNER.isolation(env={**clean, **(env or {})}) as streams:
        saved = sys.argv
        sys.argv = ["imagetrail", *args]
        code = 0
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = saved
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = streams[0].getvalue().decode(), streams[1].getvalue().decode()
    return Run(code, out, err)


def assert_one_error(run: Run, code: int, *needles: str) -> str:
    """Exit ``code``; stderr is exactly one ``error:`` line, maybe one ``hint:``, no traceback."""
    assert run.code == code, (run.code, run.out, run.err)
    lines = run.err.rstrip("\n").split("\n")
    assert lines[0].startswith("error: "), run.err
    assert len(lines) in (1, 2), run.err
    if len(lines) == 2:
        assert lines[1].startswith("hint: "), run.err
    assert "Traceback" not in run.err
    assert "\x1b" not in run.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
