"""Projects, their stages, deduplication, support priority and the ledger: pure rules, no I/O."""
