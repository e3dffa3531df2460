"""Local infrastructure (Kafka broker, PostgreSQL server) for tests and `make run`."""
