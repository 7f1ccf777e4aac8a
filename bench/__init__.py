"""Benchmarks of imagetrail against real servers; ``python -m bench`` runs them.

Results (machine-readable JSON and a Markdown table) land in ``bench/results/``; simulated
fleets are backfilled once into Prometheus TSDBs cached under ``.cache/tsdb`` (git-ignored).
See docs/benchmarks.md.
"""
