"""Test support: the real broker and database, and helpers that wait on conditions."""
