"""`imagetrail deploy` commands (registered on imagetrail.cli.app)."""
