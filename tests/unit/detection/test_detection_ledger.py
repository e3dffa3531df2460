"""The job-compensation ledger, on the Béthune reference case (900 jobs lost, 900 created,
half endogenous, half exogenous) with made-up projects."""

from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import date, timedelta
from itertools import pairwise

import pytest

from services.detection.domain.ledger import (
    BUCKETS,
    Counts,
    Jobs,
    Ledger,
    LedgerProject,
    Month,
    Shock,
    Split,
    Totals,
    contribution,
    ledger,
    ledger_csv_rows,
    ledger_of_counts,
)
from services.detection.entrypoints.schemas import LedgerOut

pytestmark = pytest.mark.unit

TERRITORY = "TI-TEST-BETHUNE"
SHOCK = Shock(
    shock_id=uuid.UUID("00000000-0000-4000-8000-000000000900"),
    territory_id=TERRITORY,
    announced_on=date(2020, 9, 16),
    jobs_lost=900,
    site_id="36120038900019",
)
GROUPS = ("endogenous", "exogenous", "total")


def row(
    n: int,
    origin: str,
    stage: str,
    planned: int,
    detected: date,
    qualified: date | None = None,
    funded: date | None = None,
    entries: tuple[tuple[date, int], ...] = (),
    territory: str = TERRITORY,
) -> LedgerProject:
    return LedgerProject(
        project_id=uuid.UUID(int=n),
        territory_id=territory,
        origin=origin,
        stage=stage,
        jobs_planned=planned,
        jobs_created=sum(j for _, j in entries),
        detected_on=detected,
        qualified_on=qualified,
        funded_on=funded,
        job_entries=entries,
    )


D = date
PROJECTS = [
    # endogenous: 450 jobs created
    row(1, "endogenous", "jobs_created", 200, D(2020, 11, 10), D(2020, 12, 1), D(2021, 3, 15),
        ((D(2021, 9, 1), 100), (D(2022, 6, 1), 150))),
    row(2, "endogenous", "jobs_created", 220, D(2021, 1, 20), D(2021, 2, 1), D(2021, 6, 1),
        ((D(2022, 1, 10), 200),)),
    row(3, "endogenous", "qualified", 40, D(2021, 2, 1), D(2021, 3, 1)),
    # self-financed: launched straight from qualified, no funded_on
    row(4, "endogenous", "launched", 30, D(2021, 5, 3), D(2021, 6, 7)),
    # exogenous: 450 jobs created (an industrial tyre-retreading project among them)
    row(5, "exogenous", "jobs_created", 300, D(2020, 10, 5), D(2020, 10, 20), D(2021, 1, 10),
        ((D(2022, 3, 1), 120), (D(2023, 5, 2), 180))),
    row(6, "exogenous", "jobs_created", 150, D(2021, 4, 12), D(2021, 5, 1), D(2021, 9, 1),
        ((D(2024, 1, 15), 150),)),
    row(7, "exogenous", "detected", 80, D(2025, 1, 20)),
    # excluded from every bucket
    row(8, "endogenous", "abandoned", 60, D(2021, 1, 5), D(2021, 2, 1)),
    row(9, "exogenous", "abandoned", 25, D(2021, 7, 5)),
    row(10, "endogenous", "jobs_created", 35, D(2020, 8, 1), D(2020, 8, 2), D(2020, 8, 3),
        ((D(2021, 1, 1), 35),)),  # detected before the announcement
    row(11, "exogenous", "jobs_created", 500, D(2021, 1, 1), D(2021, 1, 2), D(2021, 1, 3),
        ((D(2021, 6, 1), 500),), territory="TI-ELSEWHERE"),
]  # fmt: skip


def jobs(point: object, group: str) -> Jobs:
    value = getattr(point, group)
    assert isinstance(value, Jobs)
    return value


@pytest.fixture(scope="module")
def result() -> Ledger:
    return ledger(SHOCK, PROJECTS)


def test_bethune_is_fully_compensated_half_and_half(result: Ledger) -> None:
    assert result.shock == SHOCK
    assert result.compensation_rate == 1.0
    assert result.split == Split(endogenous=0.5, exogenous=0.5)


def test_buckets_per_origin_and_total(result: Ledger) -> None:
    assert dataclasses.asdict(result.endogenous) == {
        "projects": 4,
        "detected": 490,
        "qualified": 490,
        "funded": 450,
        "created": 450,
        "abandoned": 1,
        "jobs_abandoned": 60,
        "detected_rate": 0.5444,
        "qualified_rate": 0.5444,
        "funded_rate": 0.5,
        "created_rate": 0.5,
        "projects_under_review": 0,
        "jobs_under_review": 0,
    }
    assert dataclasses.asdict(result.exogenous) == {
        "projects": 3,
        "detected": 530,
        "qualified": 450,
        "funded": 450,
        "created": 450,
        "abandoned": 1,
        "jobs_abandoned": 25,
        "detected_rate": 0.5889,
        "qualified_rate": 0.5,
        "funded_rate": 0.5,
        "created_rate": 0.5,
        "projects_under_review": 0,
        "jobs_under_review": 0,
    }
    total = dataclasses.asdict(result.total)
    assert {k: total[k] for k in ("projects", *BUCKETS, "abandoned", "jobs_abandoned")} == {
        "projects": 7,
        "detected": 1020,
        "qualified": 940,
        "funded": 900,
        "created": 900,
        "abandoned": 2,
        "jobs_abandoned": 85,
    }
    assert result.total.detected_rate == 1.1333
    assert result.total.created_rate == result.compensation_rate


def test_look_alikes_count_in_full_and_apart_until_merged() -> None:
    original = row(20, "endogenous", "detected", 12, D(2021, 3, 1))
    flagged = dataclasses.replace(
        row(21, "endogenous", "detected", 14, D(2021, 3, 8)), under_review=True
    )
    merged = dataclasses.replace(
        row(22, "exogenous", "qualified", 30, D(2021, 4, 1), D(2021, 4, 2)),
        merged_into=uuid.UUID(int=20),
    )

    before = ledger(SHOCK, [original, flagged])
    assert before.total.detected == 26  # both counted while the cell decides…
    assert before.total.projects_under_review == 1
    assert before.endogenous.jobs_under_review == 14  # …and what may be counted twice
    after = ledger(SHOCK, [original, merged])
    assert after.total.detected == 12  # a merged project counts nowhere
    assert after.total.projects == 1
    assert after.exogenous.qualified == 0
    assert after.series[-1].total.detected == 12


def test_monthly_series_is_cumulative_and_monotonic(result: Ledger) -> None:
    series = result.series
    months = [str(p.month) for p in series]
    assert months[0] == "2020-09"
    assert months[-1] == "2025-01"  # the last month with data
    assert len(months) == 53
    assert months == sorted(set(months))
    assert series[0].total == Jobs()
    for before, after in pairwise(series):
        for group in GROUPS:
            for bucket in BUCKETS:
                assert getattr(jobs(after, group), bucket) >= getattr(jobs(before, group), bucket)
    for point in series:
        for bucket in BUCKETS:
            assert getattr(point.total, bucket) == (
                getattr(point.endogenous, bucket) + getattr(point.exogenous, bucket)
            )
    last = series[-1]
    for group in GROUPS:
        totals = getattr(result, group)
        assert isinstance(totals, Totals)
        assert jobs(last, group) == Jobs(*(getattr(totals, b) for b in BUCKETS))


def test_series_dates_each_bucket_by_its_milestone(result: Ledger) -> None:
    by_month = {str(p.month): p for p in result.series}
    assert by_month["2020-10"].exogenous == Jobs(detected=300, qualified=300)
    assert by_month["2021-03"].endogenous == Jobs(detected=460, qualified=460, funded=200)
    # the self-financed project counts as funded from its qualification month
    assert by_month["2021-06"].endogenous.funded == 450
    assert by_month["2021-09"].endogenous.created == 100
    assert by_month["2022-06"].total.created == 570
    assert by_month["2024-01"].total.created == 900


def test_until_bounds_the_series_not_the_totals() -> None:
    short = ledger(SHOCK, PROJECTS, until=date(2021, 12, 31))
    assert short.series[-1].month == Month(2021, 12)
    assert short.series[-1].total.created == 100
    assert short.total.created == 900
    longer = ledger(SHOCK, PROJECTS, until=date(2025, 6, 1))
    assert longer.series[-1].month == Month(2025, 6)
    assert longer.series[-1].total == longer.series[-6].total
    before = ledger(SHOCK, PROJECTS, until=date(2020, 1, 1))
    assert [p.month for p in before.series] == [Month(2020, 9)]


def test_deterministic_whatever_the_order() -> None:
    shuffled = PROJECTS[:]
    random.Random(7).shuffle(shuffled)
    assert ledger(SHOCK, shuffled) == ledger(SHOCK, PROJECTS)


def test_empty_ledger() -> None:
    empty = ledger(SHOCK, [])
    assert empty.compensation_rate == 0.0
    assert empty.split is None
    assert [p.month for p in empty.series] == [Month(2020, 9)]


def test_nothing_created_yet_has_no_split() -> None:
    only_detected = ledger(SHOCK, [PROJECTS[6]])
    assert only_detected.split is None
    assert only_detected.exogenous.detected == 80


def test_no_jobs_lost_means_no_rates() -> None:
    shock = dataclasses.replace(SHOCK, jobs_lost=0)
    result = ledger(shock, PROJECTS)
    assert result.compensation_rate is None
    assert result.total.funded_rate is None


def test_jobs_entered_before_the_announcement_count_from_its_month() -> None:
    early = row(20, "endogenous", "jobs_created", 10, D(2020, 9, 20), D(2020, 9, 21),
                D(2020, 9, 22), ((D(2020, 6, 1), 10),))  # fmt: skip
    result = ledger(SHOCK, [early])
    assert result.series[0].endogenous.created == 10


def test_unknown_origin_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown origin"):
        ledger(SHOCK, [row(30, "martian", "detected", 1, D(2021, 1, 1))])


def test_csv_rows(result: Ledger) -> None:
    rows = ledger_csv_rows(result)
    assert rows[0] == [
        "month",
        "endogenous_detected",
        "endogenous_qualified",
        "endogenous_funded",
        "endogenous_created",
        "exogenous_detected",
        "exogenous_qualified",
        "exogenous_funded",
        "exogenous_created",
        "total_detected",
        "total_qualified",
        "total_funded",
        "total_created",
    ]
    assert len(rows) == 1 + len(result.series)
    assert rows[1] == ["2020-09"] + ["0"] * 12
    assert rows[-1] == [
        "2025-01", "490", "490", "450", "450", "530", "450", "450", "450",
        "1020", "940", "900", "900",
    ]  # fmt: skip
    assert all(len(r) == 13 and all(isinstance(c, str) for c in r) for r in rows)


def test_the_api_gives_the_ledger_as_plain_json(result: Ledger) -> None:
    """The typed ledger becomes the JSON the API has always given: ids and dates as
    strings, months as YYYY-MM, one object per origin and for the total."""
    body = LedgerOut.of(result).model_dump(mode="json")
    assert list(body) == [
        "shock_id", "territory_id", "announced_on", "jobs_lost", "endogenous", "exogenous",
        "total", "compensation_rate", "split", "series",
    ]  # fmt: skip
    assert (body["shock_id"], body["territory_id"], body["announced_on"]) == (
        str(SHOCK.shock_id),
        TERRITORY,
        "2020-09-16",
    )
    assert body["endogenous"] == dataclasses.asdict(result.endogenous)
    assert set(body["total"]) == {
        "projects", "detected", "qualified", "funded", "created", "abandoned",
        "jobs_abandoned", "projects_under_review", "jobs_under_review", "detected_rate",
        "qualified_rate", "funded_rate", "created_rate",
    }  # fmt: skip
    assert body["split"] == {"endogenous": 0.5, "exogenous": 0.5}
    assert body["series"][5] == {
        "month": "2021-02",
        "endogenous": {"detected": 460, "qualified": 420, "funded": 0, "created": 0},
        "exogenous": {"detected": 300, "qualified": 300, "funded": 300, "created": 0},
        "total": {"detected": 760, "qualified": 720, "funded": 300, "created": 0},
    }
    empty = LedgerOut.of(ledger(SHOCK, [])).model_dump(mode="json")
    assert empty["split"] is None


# ----------------------------------------------- the ledger kept as counts, one project at a time

STAGES = ("detected", "qualified", "in_funding", "funded", "launched", "jobs_created", "abandoned")


def random_project(rng: random.Random, n: int) -> LedgerProject:
    """Any row the projection may hold, edge cases included: 0 planned jobs, dates before
    the announcement or out of order, jobs entered before the announcement, merged."""

    def day() -> date:
        return D(2020, 6, 1) + timedelta(days=rng.randrange(1900))

    entries = tuple(sorted((day(), rng.randrange(0, 40)) for _ in range(rng.choice((0, 0, 1, 3)))))
    return LedgerProject(
        project_id=uuid.UUID(int=n),
        territory_id=rng.choice((TERRITORY, TERRITORY, "TI-ELSEWHERE")),
        origin=rng.choice(("endogenous", "exogenous")),
        stage=rng.choice(STAGES),
        jobs_planned=rng.choice((0, rng.randrange(1, 300))),
        jobs_created=rng.randrange(0, 200),
        detected_on=day(),
        qualified_on=rng.choice((None, day())),
        funded_on=rng.choice((None, day())),
        job_entries=entries,
        under_review=rng.random() < 0.2,
        merged_into=uuid.UUID(int=1) if rng.random() < 0.1 else None,
    )


@pytest.mark.parametrize("seed", range(20))
def test_counts_kept_project_by_project_give_the_same_ledger(seed: int) -> None:
    """Contributions added as projects appear and replaced (old one subtracted, new one
    added) as they change give what `ledger` computes from the final rows, `until`
    included."""
    rng = random.Random(seed)
    shock = dataclasses.replace(SHOCK, jobs_lost=rng.choice((0, 900)))
    rows: dict[int, LedgerProject] = {}
    counts = Counts()
    for _ in range(rng.randrange(1, 120)):
        n = rng.randrange(40)
        new = random_project(rng, n)
        if n in rows:
            counts.add(contribution(shock, rows[n]), -1)
        counts.add(contribution(shock, new))
        rows[n] = new
    for until in (None, D(2019, 1, 1), D(2021, 7, 31), D(2030, 1, 1)):
        assert ledger_of_counts(shock, counts, until=until) == ledger(
            shock, rows.values(), until=until
        )


def test_a_shock_counts_nothing_of_projects_it_does_not_count() -> None:
    elsewhere, before, merged = PROJECTS[10], PROJECTS[9], PROJECTS[0]
    assert not contribution(SHOCK, elsewhere)  # another territory
    assert not contribution(SHOCK, dataclasses.replace(before, detected_on=D(2020, 9, 15)))
    assert not contribution(SHOCK, dataclasses.replace(merged, merged_into=uuid.UUID(int=5)))
    assert ledger_of_counts(SHOCK, Counts()) == ledger(SHOCK, [])
