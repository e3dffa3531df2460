"""Timestamps at the domain's edge: aware or refused.

Pure Python, so every service's `domain/` can use it. A naive datetime says nothing about
whose clock it reads (a phone in Guadeloupe, a server in UTC, a database that dropped the
offset): comparing it with an aware one is a `TypeError` at best and a silent shift of
hours at worst. The database type (`shared.db.UtcDateTime`) reads every value back aware;
this check refuses naive values before they reach an aggregate.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.errors import DomainError


class NaiveDatetime(DomainError):
    code = "naive_datetime"


def require_aware(value: datetime, name: str) -> datetime:
    """`value` in UTC; `NaiveDatetime` (422) when it has no offset."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetime(
            f"{name} {value.isoformat()} has no UTC offset: give it as 2026-11-23T08:00:00+00:00"
        )
    return value.astimezone(UTC)
