"""Domain errors: commands the domain refuses, with a message a person can read.

Pure Python (no web framework here) so that every service's `domain/` can raise them;
`shared.http` turns them into one problem-details body (RFC 9457) with the status below.
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


class OutOfScope(DomainError):
    """The caller's token does not cover the territory (or region) the command touches."""

    status_code = 403
    code = "out_of_scope"


class BadCursor(DomainError):
    """A page cursor this API did not hand out (or one from another listing)."""

    status_code = 400
    code = "bad_cursor"
