"""Schemes, eligibility matching and financing plans: pure rules, no I/O."""
