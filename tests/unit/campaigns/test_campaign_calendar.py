"""French working days: the 11 national public holidays, weekends, and the helpers the
planner walks the campaign period with."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.campaigns.domain.calendar import (
    easter_sunday,
    french_public_holidays,
    is_working_day,
    next_working_day,
    working_days,
)

pytestmark = pytest.mark.unit


def test_holidays_2021_exactly() -> None:
    assert french_public_holidays(2021) == {
        date(2021, 1, 1),
        date(2021, 4, 5),  # Easter Monday
        date(2021, 5, 1),
        date(2021, 5, 8),
        date(2021, 5, 13),  # Ascension
        date(2021, 5, 24),  # Whit Monday
        date(2021, 7, 14),
        date(2021, 8, 15),
        date(2021, 11, 1),
        date(2021, 11, 11),
        date(2021, 12, 25),
    }


def test_holidays_2025_exactly() -> None:
    assert french_public_holidays(2025) == {
        date(2025, 1, 1),
        date(2025, 4, 21),  # Easter Monday
        date(2025, 5, 1),
        date(2025, 5, 8),
        date(2025, 5, 29),  # Ascension
        date(2025, 6, 9),  # Whit Monday
        date(2025, 7, 14),
        date(2025, 8, 15),
        date(2025, 11, 1),
        date(2025, 11, 11),
        date(2025, 12, 25),
    }


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (1818, date(1818, 3, 22)),  # earliest possible
        (1943, date(1943, 4, 25)),  # latest possible
        (2000, date(2000, 4, 23)),
        (2019, date(2019, 4, 21)),
        (2021, date(2021, 4, 4)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2038, date(2038, 4, 25)),
    ],
)
def test_easter_sunday(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter
    assert easter.weekday() == 6


def test_ascension_on_may_day_gives_ten_distinct_dates() -> None:
    # 2008: Easter on 23 March puts Ascension on 1 May.
    holidays = french_public_holidays(2008)
    assert date(2008, 5, 1) in holidays
    assert len(holidays) == 10


def test_holidays_are_a_fresh_set() -> None:
    french_public_holidays(2021).add(date(2021, 6, 1))
    assert date(2021, 6, 1) not in french_public_holidays(2021)
    assert is_working_day(date(2021, 6, 1))


def test_working_day_rules() -> None:
    assert is_working_day(date(2021, 5, 12))  # Wednesday
    assert not is_working_day(date(2021, 5, 13))  # Ascension Thursday
    assert not is_working_day(date(2021, 5, 15))  # Saturday
    assert not is_working_day(date(2021, 5, 16))  # Sunday
    assert not is_working_day(date(2021, 5, 24))  # Whit Monday
    assert not is_working_day(date(2021, 4, 5))  # Easter Monday


def test_working_days_skip_weekends_and_holidays_inclusive() -> None:
    assert list(working_days(date(2021, 5, 10), date(2021, 5, 17))) == [
        date(2021, 5, 10),
        date(2021, 5, 11),
        date(2021, 5, 12),
        date(2021, 5, 14),
        date(2021, 5, 17),
    ]


def test_working_days_of_a_year() -> None:
    days = list(working_days(date(2021, 1, 1), date(2021, 12, 31)))
    # 261 weekdays in 2021, minus the 7 holidays not on a weekend (1 May, 8 May,
    # 15 August and 25 December 2021 fall on a Saturday or a Sunday).
    assert len(days) == 261 - 7
    assert all(d.weekday() < 5 for d in days)
    assert not set(days) & french_public_holidays(2021)
    assert days == sorted(days)


def test_working_days_empty_when_end_before_start() -> None:
    assert list(working_days(date(2021, 5, 12), date(2021, 5, 11))) == []


def test_working_days_single_day() -> None:
    assert list(working_days(date(2021, 5, 12), date(2021, 5, 12))) == [date(2021, 5, 12)]
    assert list(working_days(date(2021, 5, 13), date(2021, 5, 13))) == []


def test_next_working_day() -> None:
    assert next_working_day(date(2021, 5, 12)) == date(2021, 5, 12)
    # Saturday, Sunday, then Whit Monday: Tuesday.
    assert next_working_day(date(2021, 5, 22)) == date(2021, 5, 25)
    assert next_working_day(date(2021, 12, 25)) == date(2021, 12, 27)
    # Across the year end: Saturday 1 January 2022 → Monday 3.
    assert next_working_day(date(2021, 12, 31) + timedelta(days=1)) == date(2022, 1, 3)
