"""``python -m bench``: the sync benchmark (see docs/benchmarks.md).

python -m bench                      # 250, 1,000 and 2,000 containers
python -m bench --sizes 250          # a quick run
"""

from __future__ import annotations

import argparse
import shlex
import sys

import bench._paths  # noqa: F401  (puts tests/ on sys.path for the test servers)
from bench.sync_bench import DEFAULT_SIZES, print_table, run


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of container counts: {text!r}") from None
    if not sizes or any(n <= 0 for n in sizes):
        raise argparse.ArgumentTypeError("container counts must be positive")
    return sizes


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run the benchmark, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=list(DEFAULT_SIZES),
        help="container counts, e.g. 250,1000,2000 (default)",
    )
    parser.add_argument("--days", type=int, default=7, help="simulated days (default 7)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per method and size, order alternating"
    )
    parser.add_argument("--no-cli", action="store_true", help="skip the `imagetrail sync` run")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.days < 1:
        parser.error("--repeat and --days must be at least 1")
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    report = run(
        args.sizes, days=args.days, repeat=args.repeat, with_cli=not args.no_cli, command=command
    )
    print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
