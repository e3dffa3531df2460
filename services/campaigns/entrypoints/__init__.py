"""HTTP API, Kafka consumer, relay, command line."""
