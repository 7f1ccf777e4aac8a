"""`imagetrail report` commands (registered on imagetrail.cli.app)."""
