"""Tests of the benchmark code: ``.venv/bin/pytest bench/tests``."""
