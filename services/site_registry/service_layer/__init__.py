"""Use cases of the site registry: each one opens a unit of work, asks the domain, commits."""
