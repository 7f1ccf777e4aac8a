"""Commands that live outside cli.py; each module registers itself on ``imagetrail.cli.app``.

cli.py imports these modules at its end, after the shared options they use are defined.
"""
