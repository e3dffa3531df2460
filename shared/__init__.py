"""Rebond's own library: event contracts, messaging (outbox, relay, inbox, consumers),
database sessions, settings, logging and auth. Shared by every service; owns no data."""
