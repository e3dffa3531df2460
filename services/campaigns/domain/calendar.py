"""French working days for planning field visits.

A visit needs the firm to be open, so the planner only uses Monday to Friday outside the
11 national public holidays (Code du travail, art. L3133-1). The two extra days of
Alsace-Moselle (Good Friday, 26 December) are left out on purpose: campaigns run over
Territoires d'industrie in general and the reference case is in the Pas-de-Calais. The
"journée de solidarité" is not excluded either: many firms stay closed on Whit Monday and
it remains a public holiday in the calendar.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from functools import lru_cache

__all__ = [
    "easter_sunday",
    "french_public_holidays",
    "is_working_day",
    "next_working_day",
    "working_days",
]

_ONE_DAY = timedelta(days=1)


def easter_sunday(year: int) -> date:
    """Easter Sunday of ``year`` (Gregorian calendar), by the anonymous algorithm
    (Meeus/Jones/Butcher): exact for every Gregorian year, no lookup table."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[date]:
    # Cached because the planner asks is_working_day for every day of a campaign.
    easter = easter_sunday(year)
    return frozenset(
        {
            date(year, 1, 1),
            easter + timedelta(days=1),  # Easter Monday
            date(year, 5, 1),
            date(year, 5, 8),
            easter + timedelta(days=39),  # Ascension Thursday
            easter + timedelta(days=50),  # Whit Monday
            date(year, 7, 14),
            date(year, 8, 15),
            date(year, 11, 1),
            date(year, 11, 11),
            date(year, 12, 25),
        }
    )


def french_public_holidays(year: int) -> set[date]:
    """The 11 national public holidays of ``year`` (a fresh set the caller may modify)."""
    return set(_holidays(year))


def is_working_day(d: date) -> bool:
    """Monday to Friday and not a national public holiday."""
    return d.weekday() < 5 and d not in _holidays(d.year)


def working_days(start: date, end: date) -> Iterator[date]:
    """Working days from ``start`` to ``end``, both included, in order (none if end < start)."""
    d = start
    while d <= end:
        if is_working_day(d):
            yield d
        d += _ONE_DAY


def next_working_day(d: date) -> date:
    """``d`` itself if it is a working day, else the first working day after it."""
    while not is_working_day(d):
        d += _ONE_DAY
    return d
