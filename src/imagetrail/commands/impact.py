"""`imagetrail impact` commands (registered on imagetrail.cli.app)."""
