"""Reliable messaging: transactional outbox + relay on the producing side, inbox +
consumer runner with retries and dead-letter topics on the consuming side."""
