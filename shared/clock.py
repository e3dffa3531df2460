"""One clock for every service: the time is UTC, the date is France's.

Visits, detections and decisions happen in France, so "today" is the date in Paris: at
23:30 UTC in summer it is already tomorrow there. Services take a `Clock` from their
composition root; tests pass a fixed one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def system_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Clock:
    now: Callable[[], datetime] = system_now

    def today(self) -> date:
        return self.now().astimezone(PARIS).date()

    @classmethod
    def fixed(cls, at: datetime) -> Clock:
        return cls(lambda: at)
