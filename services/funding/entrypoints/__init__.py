"""Funding service."""
