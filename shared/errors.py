"""Domain errors: commands the domain refuses, with a message a person can read.

Pure Python (no web framework here) so that every service's `domain/` can raise them;
`shared.http` maps them to HTTP statuses.
"""

from __future__ import annotations


class DomainError(Exception):
    status_code: int = 422
    code: str = "refused"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
