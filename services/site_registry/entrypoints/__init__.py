"""How the world reaches the registry: the HTTP API, the outbox relay, the command line."""
