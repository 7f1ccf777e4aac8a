"""The ``imagetrail`` command line (the console script runs :func:`main`)."""

from imagetrail.cli.app import app, main

__all__ = ["app", "main"]
