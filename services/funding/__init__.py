"""Funding matching: scheme catalogue, matching with reasons, financing plans."""
