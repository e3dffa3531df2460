"""The job-compensation ledger of a closure shock: jobs lost against jobs from projects.

Pure arithmetic over one row per project (the projection keeps the rows up to date from
the project events). Rules:

* **Which projects.** Those of the shock's territory detected on or after the
  announcement date: earlier projects were not found by the rebond.
* **Merged projects count nowhere**: the crisis cell decided they were another project
  reported twice, and that project counts their jobs. **Projects under review** (flagged
  as a possible duplicate, not yet merged or cleared) count in full, and are also
  counted apart — ``projects_under_review``, ``jobs_under_review`` (their planned jobs)
  — so the cell sees how much of the pipeline may be counted twice.
* **Abandoned projects count nowhere**, not even in the months before they were
  abandoned (the rows hold the current state, and a series that later drops would read
  as jobs destroyed). They appear only as an ``abandoned`` count and their planned jobs
  as ``jobs_abandoned``.
* **Buckets**, per origin (endogenous, exogenous) and in total: ``detected`` = planned
  jobs of every counted project; ``qualified`` = planned jobs of projects qualified or
  later; ``funded`` = planned jobs of projects funded, launched or with jobs (see
  ``stages.reached``); ``created`` = jobs actually created. Planned jobs measure the
  pipeline, created jobs the result.
* **Rates** are bucket / jobs lost (``compensation_rate`` is the total ``created_rate``),
  None when the shock lost no job. ``split`` is each origin's share of created jobs, None
  while no job is created.
* **Monthly series**, from the announcement month to ``until``'s month when given,
  otherwise to the last month with data (at least one month): cumulative jobs per
  origin, by ``detected_on``, ``qualified_on``, ``funded_on`` and the job entries'
  dates. A project that counts in a bucket without the date (a self-financed project
  launched straight from qualified has no ``funded_on``) is dated by the previous
  milestone it has, so the last month of a series that reaches every date matches the
  totals. Job entries dated before the announcement count from its month. ``until`` only
  bounds the series: the totals are always the current state.

Deterministic: months in order, origins in a fixed order, rates rounded to four
decimals. A typed value (ids, dates, months, ints): the API turns it into JSON at its edge.

Two ways to the same ledger. ``ledger`` computes it from every project at once (the
reference, and what a rebuild is checked against). ``contribution`` says what ONE project
adds to one shock's ``Counts`` — per origin the totals' counters, per month and origin
the jobs each bucket adds and how many dated items land there — so that a projection can
keep the counts as events arrive (subtract a project's old contribution, add its new
one) and ``ledger_of_counts`` turns them into the same ``Ledger`` without reading any
project.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Final, Literal

from services.detection.domain.stages import Stage, reached

__all__ = [
    "BUCKETS",
    "MONTH_COUNTERS",
    "ORIGINS",
    "TOTAL_COUNTERS",
    "Counts",
    "Jobs",
    "Ledger",
    "LedgerProject",
    "Month",
    "MonthPoint",
    "Shock",
    "Split",
    "Totals",
    "contribution",
    "ledger",
    "ledger_csv_rows",
    "ledger_of_counts",
]

Group = Literal["endogenous", "exogenous", "total"]
ORIGINS: Final[tuple[Group, Group]] = ("endogenous", "exogenous")
BUCKETS: Final = ("detected", "qualified", "funded", "created")
_GROUPS: Final[tuple[Group, ...]] = (*ORIGINS, "total")


@dataclass(frozen=True)
class LedgerProject:
    project_id: uuid.UUID
    territory_id: str
    origin: str
    stage: str
    jobs_planned: int
    jobs_created: int
    detected_on: date
    qualified_on: date | None  # first day the project reached qualified or later
    funded_on: date | None  # first day it reached funded, launched or jobs_created
    job_entries: tuple[tuple[date, int], ...]  # (created_on, jobs_added)
    under_review: bool = False  # flagged as a possible duplicate of another project
    merged_into: uuid.UUID | None = None


@dataclass(frozen=True)
class Shock:
    """A closure shock, counted in the ledger of its one primary territory."""

    shock_id: uuid.UUID
    territory_id: str  # ClosureAnnounced.primary_territory_id
    announced_on: date
    jobs_lost: int
    site_id: str  # the establishment that announced its closure


@dataclass(frozen=True)
class Jobs:
    """Jobs per bucket: planned jobs detected, qualified and funded; jobs created."""

    detected: int = 0
    qualified: int = 0
    funded: int = 0
    created: int = 0


@dataclass(frozen=True)
class Totals:
    """One origin's figures (or the total's), against the shock's jobs lost."""

    projects: int
    detected: int
    qualified: int
    funded: int
    created: int
    abandoned: int
    jobs_abandoned: int
    projects_under_review: int
    jobs_under_review: int
    detected_rate: float | None
    qualified_rate: float | None
    funded_rate: float | None
    created_rate: float | None


@dataclass(frozen=True)
class Split:
    """Each origin's share of the jobs created."""

    endogenous: float
    exogenous: float


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class MonthPoint:
    """Cumulative jobs at the end of ``month``."""

    month: Month
    endogenous: Jobs
    exogenous: Jobs
    total: Jobs


@dataclass(frozen=True)
class Ledger:
    shock: Shock
    endogenous: Totals
    exogenous: Totals
    total: Totals
    compensation_rate: float | None  # the total's created_rate
    split: Split | None  # None while no job is created
    series: tuple[MonthPoint, ...]


@dataclass
class _Tally:
    projects: int = 0
    abandoned: int = 0
    jobs_abandoned: int = 0
    projects_under_review: int = 0
    jobs_under_review: int = 0
    jobs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))

    def totals(self, jobs_lost: int) -> Totals:
        j = self.jobs
        return Totals(
            projects=self.projects,
            detected=j["detected"],
            qualified=j["qualified"],
            funded=j["funded"],
            created=j["created"],
            abandoned=self.abandoned,
            jobs_abandoned=self.jobs_abandoned,
            projects_under_review=self.projects_under_review,
            jobs_under_review=self.jobs_under_review,
            detected_rate=_ratio(j["detected"], jobs_lost),
            qualified_rate=_ratio(j["qualified"], jobs_lost),
            funded_rate=_ratio(j["funded"], jobs_lost),
            created_rate=_ratio(j["created"], jobs_lost),
        )


def ledger(shock: Shock, projects: Iterable[LedgerProject], *, until: date | None = None) -> Ledger:
    """The ledger of ``shock`` over ``projects`` (any territory: they are filtered here)."""
    counted: list[LedgerProject] = []
    tallies = {g: _Tally() for g in _GROUPS}
    for p in sorted(projects, key=lambda p: str(p.project_id)):
        if p.territory_id != shock.territory_id or p.detected_on < shock.announced_on:
            continue
        if p.merged_into is not None:
            continue
        if p.origin not in ORIGINS:
            raise ValueError(f"project {p.project_id} has unknown origin {p.origin!r}")
        stage = Stage(p.stage)
        for group in (p.origin, "total"):
            tally = tallies[group]
            if stage is Stage.ABANDONED:
                tally.abandoned += 1
                tally.jobs_abandoned += p.jobs_planned
                continue
            tally.projects += 1
            tally.jobs["detected"] += p.jobs_planned
            if p.under_review:
                tally.projects_under_review += 1
                tally.jobs_under_review += p.jobs_planned
            if reached(stage, Stage.QUALIFIED):
                tally.jobs["qualified"] += p.jobs_planned
            if reached(stage, Stage.FUNDED):
                tally.jobs["funded"] += p.jobs_planned
            tally.jobs["created"] += p.jobs_created
        if stage is not Stage.ABANDONED:
            counted.append(p)

    return _assembled(shock, tallies, _series(shock, counted, until))


def _assembled(
    shock: Shock, tallies: dict[Group, _Tally], series: tuple[MonthPoint, ...]
) -> Ledger:
    totals = {g: tallies[g].totals(shock.jobs_lost) for g in _GROUPS}
    created = totals["total"].created
    return Ledger(
        shock=shock,
        endogenous=totals["endogenous"],
        exogenous=totals["exogenous"],
        total=totals["total"],
        compensation_rate=totals["total"].created_rate,
        split=Split(
            endogenous=round(totals["endogenous"].created / created, 4),
            exogenous=round(totals["exogenous"].created / created, 4),
        )
        if created
        else None,
        series=series,
    )


def ledger_csv_rows(result: Ledger) -> list[list[str]]:
    """A header, then one row per month: cumulative jobs per origin and in total."""
    header = ["month"] + [f"{g}_{b}" for g in _GROUPS for b in BUCKETS]
    rows = [header]
    for point in result.series:
        groups = (point.endogenous, point.exogenous, point.total)
        rows.append([str(point.month)] + [str(getattr(j, b)) for j in groups for b in BUCKETS])
    return rows


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _series(
    shock: Shock, counted: Sequence[LedgerProject], until: date | None
) -> tuple[MonthPoint, ...]:
    start = Month.of(shock.announced_on)
    # Per (month, origin, bucket): the jobs that month adds; clamped to the first month.
    added: dict[tuple[Month, str, str], int] = {}

    def add(day: date, origin: str, bucket: str, jobs: int) -> None:
        key = (max(start, Month.of(day)), origin, bucket)
        added[key] = added.get(key, 0) + jobs

    for p in counted:
        stage = Stage(p.stage)
        add(p.detected_on, p.origin, "detected", p.jobs_planned)
        qualified_on = p.qualified_on or p.detected_on
        if reached(stage, Stage.QUALIFIED):
            add(qualified_on, p.origin, "qualified", p.jobs_planned)
        if reached(stage, Stage.FUNDED):
            add(p.funded_on or qualified_on, p.origin, "funded", p.jobs_planned)
        for created_on, jobs in p.job_entries:
            add(created_on, p.origin, "created", jobs)

    last = Month.of(until) if until is not None else max((k[0] for k in added), default=start)
    return _points(start, added, last)


def _points(
    start: Month, added: Mapping[tuple[Month, str, str], int], last: Month
) -> tuple[MonthPoint, ...]:
    """The cumulative series from ``start`` to ``last`` (at least one month) of the jobs
    each (month, origin, bucket) adds."""
    running = {(o, b): 0 for o in ORIGINS for b in BUCKETS}
    series: list[MonthPoint] = []
    month = start
    while month <= max(start, last):
        for origin in ORIGINS:
            for bucket in BUCKETS:
                running[origin, bucket] += added.get((month, origin, bucket), 0)
        endogenous, exogenous = (Jobs(*(running[o, b] for b in BUCKETS)) for o in ORIGINS)
        total = Jobs(*(running["endogenous", b] + running["exogenous", b] for b in BUCKETS))
        series.append(MonthPoint(month, endogenous, exogenous, total))
        month = month.next()
    return tuple(series)


# --- the ledger as counts, kept up to date one project at a time -----------------------

#: Per (shock, origin): the totals' counters (the rates are computed when read).
TOTAL_COUNTERS: Final = (
    "projects",
    *BUCKETS,
    "abandoned",
    "jobs_abandoned",
    "projects_under_review",
    "jobs_under_review",
)
#: Per (shock, origin, month): the jobs each bucket adds that month, and ``items``, how
#: many dated contributions land in it — a project with 0 planned jobs still makes its
#: month "a month with data", which ends the series (see ``ledger``).
MONTH_COUNTERS: Final = (*BUCKETS, "items")


@dataclass
class Counts:
    """What some projects add to one shock's ledger: ``totals[origin, counter]`` and
    ``months[month, origin, counter]``. Sums commute: added in any order, subtracted as
    they were added, they give the counts of the projects present."""

    totals: dict[tuple[str, str], int] = field(default_factory=dict)
    months: dict[tuple[Month, str, str], int] = field(default_factory=dict)

    def add(self, other: Counts, sign: int = 1) -> None:
        for key, n in other.totals.items():
            self.totals[key] = self.totals.get(key, 0) + sign * n
        for mkey, n in other.months.items():
            self.months[mkey] = self.months.get(mkey, 0) + sign * n

    def nonzero(self) -> Counts:
        """Without the counters that add nothing (a project's move that changed nothing
        for this shock writes nothing)."""
        return Counts(
            totals={k: n for k, n in self.totals.items() if n},
            months={k: n for k, n in self.months.items() if n},
        )

    def __bool__(self) -> bool:
        return any(self.totals.values()) or any(self.months.values())


def contribution(
    shock: Shock, p: LedgerProject, *, into: Counts | None = None, sign: int = 1
) -> Counts:
    """What ``p`` adds to ``shock``'s counts: the same rules as ``ledger``, one project
    at a time (nothing when the shock does not count it). Added ``sign`` times to
    ``into`` when given (a recount adds thousands: no intermediate ``Counts``)."""
    out = Counts() if into is None else into
    if p.territory_id != shock.territory_id or p.detected_on < shock.announced_on:
        return out
    if p.merged_into is not None:
        return out
    if p.origin not in ORIGINS:
        raise ValueError(f"project {p.project_id} has unknown origin {p.origin!r}")
    origin, stage, totals = p.origin, Stage(p.stage), out.totals

    def count(counter: str, n: int) -> None:
        key = (origin, counter)
        totals[key] = totals.get(key, 0) + sign * n

    if stage is Stage.ABANDONED:
        count("abandoned", 1)
        count("jobs_abandoned", p.jobs_planned)
        return out
    qualified, funded = reached(stage, Stage.QUALIFIED), reached(stage, Stage.FUNDED)
    count("projects", 1)
    count("detected", p.jobs_planned)
    count("qualified", p.jobs_planned if qualified else 0)
    count("funded", p.jobs_planned if funded else 0)
    count("created", p.jobs_created)
    count("projects_under_review", 1 if p.under_review else 0)
    count("jobs_under_review", p.jobs_planned if p.under_review else 0)

    start = Month.of(shock.announced_on)
    months = out.months

    def add(day: date, bucket: str, jobs: int) -> None:
        month = max(start, Month.of(day))  # clamped to the first month, as in `_series`
        months[month, origin, bucket] = months.get((month, origin, bucket), 0) + sign * jobs
        months[month, origin, "items"] = months.get((month, origin, "items"), 0) + sign

    add(p.detected_on, "detected", p.jobs_planned)
    qualified_on = p.qualified_on or p.detected_on
    if qualified:
        add(qualified_on, "qualified", p.jobs_planned)
    if funded:
        add(p.funded_on or qualified_on, "funded", p.jobs_planned)
    for created_on, jobs in p.job_entries:
        add(created_on, "created", jobs)
    return out


def ledger_of_counts(shock: Shock, counts: Counts, *, until: date | None = None) -> Ledger:
    """The ledger ``ledger`` would compute from the projects whose contributions make
    ``counts``."""
    tallies = {g: _Tally() for g in _GROUPS}
    for origin in ORIGINS:
        for tally in (tallies[origin], tallies["total"]):
            n = {c: counts.totals.get((origin, c), 0) for c in TOTAL_COUNTERS}
            tally.projects += n["projects"]
            tally.abandoned += n["abandoned"]
            tally.jobs_abandoned += n["jobs_abandoned"]
            tally.projects_under_review += n["projects_under_review"]
            tally.jobs_under_review += n["jobs_under_review"]
            for bucket in BUCKETS:
                tally.jobs[bucket] += n[bucket]
    start = Month.of(shock.announced_on)
    added = {k: n for k, n in counts.months.items() if k[2] != "items"}
    with_data = [k[0] for k, n in counts.months.items() if k[2] == "items" and n > 0]
    last = Month.of(until) if until is not None else max(with_data, default=start)
    return _assembled(shock, tallies, _points(start, added, last))
