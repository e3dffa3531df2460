"""The job-compensation ledger as a projection: applies project events and closure
announcements to the ledger's rows and the shocks.

Two halves: `batch` (pure) folds a batch of events into the rows to write, and
`LedgerProjection` writes them, one statement per table. Every write is idempotent and
order-safe per project: a project's row is replaced only by a newer version, a job entry
is keyed by the event's version, a shock by its id. So the live consumer, a replay, and a
rebuild running beside the live consumer all converge on the same rows — the figures are
then computed from those rows (`domain/ledger.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from services.detection.adapters.orm import LedgerJobEntryRow, LedgerProjectRow, ShockRow
from services.detection.domain.ledger import LedgerProject, Shock
from services.detection.domain.stages import Stage, reached
from shared.events import detection as dt
from shared.events import site_registry as sr
from shared.events.envelope import EventPayload
from shared.messaging.tables import InboxMessage


@dataclass(frozen=True)
class ProjectLine:
    """A project as the ledger counts it (a row of `ledger_projects`)."""

    project_id: uuid.UUID
    version: int
    territory_id: str
    origin: str
    stage: str
    jobs_planned: int
    jobs_created: int
    detected_on: date
    qualified_on: date | None  # the day it was first seen qualified or later
    funded_on: date | None  # the day it was first seen funded or later
    under_review: bool
    merged_into: uuid.UUID | None


@dataclass(frozen=True)
class JobEntry:
    project_id: uuid.UUID
    version: int  # of the JobsCreated event: a replayed event adds nothing
    created_on: date
    jobs_added: int


@dataclass
class Batch:
    """What a batch of events writes: per project its latest line, the job entries, the
    shocks announced."""

    projects: dict[uuid.UUID, ProjectLine] = field(default_factory=dict)
    job_entries: list[JobEntry] = field(default_factory=list)
    shocks: list[Shock] = field(default_factory=list)


def line_of(event: dt.ProjectState) -> ProjectLine:
    day = event.occurred_at.date()
    stage = Stage(event.stage)
    return ProjectLine(
        project_id=event.project_id,
        version=event.version,
        territory_id=event.territory_id,
        origin=event.origin,
        stage=event.stage,
        jobs_planned=event.jobs_planned,
        jobs_created=event.jobs_created,
        detected_on=event.detected_on,
        # The day a stage was first reached: the stored one is kept (see the upsert), so
        # a later event does not move it.
        qualified_on=day if reached(stage, Stage.QUALIFIED) else None,
        funded_on=day if reached(stage, Stage.FUNDED) else None,
        # Readers of events from before the duplicate flag find None: not under review.
        under_review=event.possible_duplicate_of is not None,
        merged_into=event.merged_into if isinstance(event, dt.ProjectMerged) else None,
    )


def counted(
    row: ProjectLine | LedgerProjectRow, entries: Iterable[JobEntry | LedgerJobEntryRow]
) -> LedgerProject:
    """What the ledger counts of a stored project, with its job entries."""
    return LedgerProject(
        project_id=row.project_id,
        territory_id=row.territory_id,
        origin=row.origin,
        stage=row.stage,
        jobs_planned=row.jobs_planned,
        jobs_created=row.jobs_created,
        detected_on=row.detected_on,
        qualified_on=row.qualified_on,
        funded_on=row.funded_on,
        job_entries=tuple(sorted((e.created_on, e.jobs_added) for e in entries)),
        under_review=row.under_review,
        merged_into=row.merged_into,
    )


def shock_of(event: sr.ClosureAnnounced) -> Shock | None:
    """The shock, counted in its primary territory; None for a shock outside every
    territory (no crisis cell, no ledger, no project can be declared for it)."""
    territory_id = event.primary_territory_id
    if territory_id is None:
        return None
    return Shock(
        shock_id=event.shock_id,
        territory_id=territory_id,
        announced_on=event.announced_on,
        jobs_lost=event.jobs_lost,
        site_id=event.site_id,
    )


def batch(events: Iterable[EventPayload]) -> Batch:
    """Fold events (any order across projects; per project, any order too) into the rows
    to write; events of no interest to the ledger are skipped."""
    out = Batch()
    for event in events:
        if isinstance(event, dt.ProjectState):
            line = line_of(event)
            known = out.projects.get(event.project_id)
            out.projects[event.project_id] = line if known is None else _combined(known, line)
            if isinstance(event, dt.JobsCreated) and event.jobs_added:
                out.job_entries.append(
                    JobEntry(event.project_id, event.version, event.created_on, event.jobs_added)
                )
        elif isinstance(event, sr.ClosureAnnounced):
            shock = shock_of(event)
            if shock is not None:
                out.shocks.append(shock)
    return out


def _combined(known: ProjectLine, new: ProjectLine) -> ProjectLine:
    # Within a batch: the latest version's figures, the earliest stage dates.
    latest = new if new.version >= known.version else known
    return replace(
        latest,
        qualified_on=_earliest(known.qualified_on, new.qualified_on),
        funded_on=_earliest(known.funded_on, new.funded_on),
    )


def _earliest(a: date | None, b: date | None) -> date | None:
    return min(a, b) if a is not None and b is not None else a or b


class LedgerProjection:
    """Writes batches to the ledger's tables and the shocks."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def apply(self, events: Iterable[EventPayload]) -> None:
        rows = batch(events)
        insert = _insert(self._session)
        # One statement per table, executed with many parameter sets: compiled once and
        # cached, instead of a new multi-row INSERT (and its compilation) for every batch.
        if rows.projects:
            await self._session.execute(
                _project_upsert(insert), [vars(p) for p in rows.projects.values()]
            )
        if rows.job_entries:
            await self._session.execute(
                insert(LedgerJobEntryRow).on_conflict_do_nothing(),
                [vars(e) for e in rows.job_entries],
            )
        if rows.shocks:
            await self._session.execute(
                insert(ShockRow).on_conflict_do_nothing(), [vars(s) for s in rows.shocks]
            )

    async def reset(self, consumer: str) -> None:
        """Forget every project the ledger counted, and what `consumer` processed, for a
        rebuild. Shocks stay: the commands need them too, and a replay re-inserts any
        missing one unchanged."""
        for table in (LedgerJobEntryRow, LedgerProjectRow):
            await self._session.exec(delete(table))
        await self._session.exec(delete(InboxMessage).where(col(InboxMessage.consumer) == consumer))


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _project_upsert(insert: Any) -> Any:
    table = LedgerProjectRow.__table__  # type: ignore[attr-defined]
    stmt = insert(LedgerProjectRow)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["project_id"],
        set_={
            "version": excluded.version,
            "territory_id": excluded.territory_id,
            "origin": excluded.origin,
            "stage": excluded.stage,
            "jobs_planned": excluded.jobs_planned,
            "jobs_created": excluded.jobs_created,
            "detected_on": excluded.detected_on,
            "qualified_on": sa.func.coalesce(table.c.qualified_on, excluded.qualified_on),
            "funded_on": sa.func.coalesce(table.c.funded_on, excluded.funded_on),
            "under_review": excluded.under_review,
            # A merge is final: no later version of the project exists to undo it.
            "merged_into": sa.func.coalesce(table.c.merged_into, excluded.merged_into),
        },
        where=table.c.version < excluded.version,
    )
