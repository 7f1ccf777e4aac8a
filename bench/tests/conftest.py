"""Puts tests/ on sys.path (the real servers), as the benchmark itself does."""

import bench._paths  # noqa: F401
