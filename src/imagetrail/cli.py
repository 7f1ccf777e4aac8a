"""Command line interface (placeholder until the CLI lands)."""


def main() -> None:
    raise SystemExit("imagetrail: CLI not built yet")
