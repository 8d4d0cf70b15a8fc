"""Entry points: the `custody` command, the HTTP event endpoint, configuration
and the composition root that wires the real adapters."""
