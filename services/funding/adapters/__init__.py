"""Catalogue importers (Aides-territoires API, ADEME Agir) and the curated seed."""
