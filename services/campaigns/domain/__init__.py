"""Campaigns, targets, visits and surveys: pure rules, no I/O."""
