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

Deterministic: months in order, origins in a fixed order, ints and floats rounded to four
decimals; ids and dates as strings, so the result is plain JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from services.detection.domain.stages import Stage, reached

__all__ = [
    "BUCKETS",
    "ORIGINS",
    "LedgerProject",
    "Shock",
    "ledger",
    "ledger_csv_rows",
]

ORIGINS: Final = ("endogenous", "exogenous")
BUCKETS: Final = ("detected", "qualified", "funded", "created")
_GROUPS: Final = (*ORIGINS, "total")


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
    shock_id: uuid.UUID
    territory_id: str
    announced_on: date
    jobs_lost: int


Month = tuple[int, int]


def ledger(
    shock: Shock, projects: Iterable[LedgerProject], *, until: date | None = None
) -> dict[str, Any]:
    """The ledger of ``shock`` over ``projects`` (any territory: they are filtered here)."""
    counted: list[LedgerProject] = []
    totals = {g: _empty_bucket() for g in _GROUPS}
    for p in sorted(projects, key=lambda p: str(p.project_id)):
        if p.territory_id != shock.territory_id or p.detected_on < shock.announced_on:
            continue
        if p.merged_into is not None:
            continue
        if p.origin not in ORIGINS:
            raise ValueError(f"project {p.project_id} has unknown origin {p.origin!r}")
        stage = Stage(p.stage)
        for group in (p.origin, "total"):
            bucket = totals[group]
            if stage is Stage.ABANDONED:
                bucket["abandoned"] += 1
                bucket["jobs_abandoned"] += p.jobs_planned
                continue
            bucket["projects"] += 1
            bucket["detected"] += p.jobs_planned
            if p.under_review:
                bucket["projects_under_review"] += 1
                bucket["jobs_under_review"] += p.jobs_planned
            if reached(stage, Stage.QUALIFIED):
                bucket["qualified"] += p.jobs_planned
            if reached(stage, Stage.FUNDED):
                bucket["funded"] += p.jobs_planned
            bucket["created"] += p.jobs_created
        if stage is not Stage.ABANDONED:
            counted.append(p)

    result: dict[str, Any] = {
        "shock_id": str(shock.shock_id),
        "territory_id": shock.territory_id,
        "announced_on": shock.announced_on.isoformat(),
        "jobs_lost": shock.jobs_lost,
    }
    for group in _GROUPS:
        figures: dict[str, Any] = dict(totals[group])
        for name in BUCKETS:
            figures[f"{name}_rate"] = _ratio(totals[group][name], shock.jobs_lost)
        result[group] = figures
    created = totals["total"]["created"]
    result["compensation_rate"] = result["total"]["created_rate"]
    result["split"] = (
        {o: _ratio(totals[o]["created"], created) for o in ORIGINS} if created else None
    )
    result["series"] = _series(shock, counted, until)
    return result


def ledger_csv_rows(result: dict[str, Any]) -> list[list[str]]:
    """A header, then one row per month: cumulative jobs per origin and in total."""
    header = ["month"] + [f"{g}_{b}" for g in _GROUPS for b in BUCKETS]
    rows = [header]
    for point in result["series"]:
        rows.append([point["month"]] + [str(point[g][b]) for g in _GROUPS for b in BUCKETS])
    return rows


def _empty_bucket() -> dict[str, int]:
    return dict.fromkeys(
        (
            "projects",
            *BUCKETS,
            "abandoned",
            "jobs_abandoned",
            "projects_under_review",
            "jobs_under_review",
        ),
        0,
    )


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _month(day: date) -> Month:
    return (day.year, day.month)


def _months(first: Month, last: Month) -> list[Month]:
    months: list[Month] = []
    year, month = first
    while (year, month) <= last:
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _series(
    shock: Shock, counted: Sequence[LedgerProject], until: date | None
) -> list[dict[str, Any]]:
    start = _month(shock.announced_on)
    # Per (month, origin, bucket): the jobs that month adds; clamped to the first month.
    added: dict[tuple[Month, str, str], int] = {}

    def add(day: date, origin: str, bucket: str, jobs: int) -> None:
        key = (max(start, _month(day)), origin, bucket)
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

    last = _month(until) if until is not None else max((k[0] for k in added), default=start)
    running = {(o, b): 0 for o in ORIGINS for b in BUCKETS}
    series: list[dict[str, Any]] = []
    for month in _months(start, max(start, last)):
        for origin in ORIGINS:
            for bucket in BUCKETS:
                running[origin, bucket] += added.get((month, origin, bucket), 0)
        point: dict[str, Any] = {"month": f"{month[0]:04d}-{month[1]:02d}"}
        for origin in ORIGINS:
            point[origin] = {b: running[origin, b] for b in BUCKETS}
        point["total"] = {b: sum(running[o, b] for o in ORIGINS) for b in BUCKETS}
        series.append(point)
    return series
