"""Use cases and event handlers; read views."""
