"""Use cases: one unit of work each; read views for the API."""
