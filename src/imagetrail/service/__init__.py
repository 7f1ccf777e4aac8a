"""Where I/O meets analysis: scope, query answers, sync, impact, deployments, the demo."""
