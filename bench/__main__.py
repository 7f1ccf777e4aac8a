"""``python -m bench``: the sync, web and impact benchmarks (see docs/benchmarks.md).

python -m bench                      # all: sync at 250, 1,000 and 2,000 containers, web, impact
python -m bench --only sync --sizes 250   # a quick sync run
python -m bench --only web           # the web benchmark alone
python -m bench --only impact        # impact: judged from Prometheus vs read from the ledger
python -m bench --only workers       # serve with 1 vs 2 worker processes
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
    parser.add_argument(
        "--only",
        choices=("sync", "web", "impact", "workers"),
        default=None,
        help="run one benchmark (default: all)",
    )
    web = parser.add_argument_group("web benchmark")
    web.add_argument(
        "--web-rounds", type=int, default=None, help="repetitions of the heatmap mixes"
    )
    web.add_argument("--load-seconds", type=float, default=None, help="load test time (30)")
    web.add_argument("--no-browser", action="store_true", help="skip the Chromium timing")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.days < 1:
        parser.error("--repeat and --days must be at least 1")
    if args.web_rounds is not None and args.web_rounds < 1:
        parser.error("--web-rounds must be at least 1")
    if args.load_seconds is not None and args.load_seconds <= 0:
        parser.error("--load-seconds must be positive")
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    if args.only in (None, "sync"):
        report = run(
            args.sizes,
            days=args.days,
            repeat=args.repeat,
            with_cli=not args.no_cli,
            command=command,
        )
        print_table(report)
    if args.only in (None, "web"):
        from bench.web_bench import run as run_web
        from bench.web_bench import web_config_from
        from bench.web_report import print_summary

        cfg = web_config_from(
            rounds=args.web_rounds, load_seconds=args.load_seconds, browser=not args.no_browser
        )
        print_summary(run_web(cfg, command=command))
    if args.only in (None, "impact"):
        from bench.impact_bench import print_summary as print_impact
        from bench.impact_bench import run as run_impact

        print_impact(run_impact(command=command))
    if args.only in (None, "workers"):
        from bench.workers_bench import print_summary as print_workers
        from bench.workers_bench import run as run_workers

        print_workers(run_workers(command=command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
