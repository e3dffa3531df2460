"""Event contracts: the envelope, the payload models of every service, the topic catalogue."""
