"""HTTP API, consumers, relay, command line."""
