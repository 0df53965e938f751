"""fixbridge edges: the QuickFIX adapter, HTTP API, persistence, configuration and CLI."""
