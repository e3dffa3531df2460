"""The job-compensation ledger as a projection: applies project events and closure
announcements to the ledger tables.

Every write is idempotent and order-safe per project: a project's row is replaced only by
a newer version, a job entry is keyed by the event's version, a shock by its id. So the
live consumer, a replay, and a rebuild running beside the live consumer all converge on
the same rows — the figures are then computed from those rows (`domain/ledger.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import delete
from sqlmodel.ext.asyncio.session import AsyncSession

from services.detection.adapters.orm import LedgerJobEntryRow, LedgerProjectRow, LedgerShockRow
from shared.events import detection as dt
from shared.events import site_registry as sr
from shared.events.envelope import EventPayload

QUALIFIED_OR_LATER = {"qualified", "in_funding", "funded", "launched", "jobs_created"}
FUNDED_OR_LATER = {"funded", "launched", "jobs_created"}


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def project_values(event: dt.ProjectState) -> dict[str, Any]:
    day = event.occurred_at.date()
    return {
        "project_id": event.project_id,
        "version": event.version,
        "territory_id": event.territory_id,
        "origin": event.origin,
        "stage": event.stage,
        "jobs_planned": event.jobs_planned,
        "jobs_created": event.jobs_created,
        "detected_on": event.detected_on,
        # The day a stage was first reached: kept by the upsert below (COALESCE), so a
        # later event does not move it.
        "qualified_on": day if event.stage in QUALIFIED_OR_LATER else None,
        "funded_on": day if event.stage in FUNDED_OR_LATER else None,
        # Readers of events from before the duplicate flag find None: not under review.
        "under_review": event.possible_duplicate_of is not None,
        "merged_into": event.merged_into if isinstance(event, dt.ProjectMerged) else None,
    }


async def apply(session: AsyncSession, events: Sequence[EventPayload]) -> None:
    """Apply a batch of events (any order across projects; per project, any order too)."""
    projects: dict[Any, dict[str, Any]] = {}
    entries: list[dict[str, Any]] = []
    shocks: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, dt.ProjectState):
            values = project_values(event)
            known = projects.get(event.project_id)
            if known is not None:
                # Within a batch: the latest version's figures, the earliest stage dates.
                for key in ("qualified_on", "funded_on"):
                    dates = [d for d in (known[key], values[key]) if d is not None]
                    values[key] = min(dates) if dates else None
                if known["version"] > event.version:
                    values = {
                        **known,
                        "qualified_on": values["qualified_on"],
                        "funded_on": values["funded_on"],
                    }
            projects[event.project_id] = values
            if isinstance(event, dt.JobsCreated) and event.jobs_added:
                entries.append(
                    {
                        "project_id": event.project_id,
                        "version": event.version,
                        "created_on": event.created_on,
                        "jobs_added": event.jobs_added,
                    }
                )
        elif isinstance(event, sr.ClosureAnnounced) and event.territory_ids:
            shocks.append(
                {
                    "shock_id": event.shock_id,
                    "site_id": event.site_id,
                    "territory_id": event.territory_ids[0],
                    "announced_on": event.announced_on,
                    "jobs_lost": event.jobs_lost,
                }
            )
    insert = _insert(session)
    # One statement per table, executed with many parameter sets: compiled once and
    # cached, instead of a new multi-row INSERT (and its compilation) for every batch.
    if projects:
        await session.execute(_project_upsert(insert), list(projects.values()))
    if entries:
        await session.execute(insert(LedgerJobEntryRow).on_conflict_do_nothing(), entries)
    if shocks:
        await session.execute(insert(LedgerShockRow).on_conflict_do_nothing(), shocks)


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


async def drop(session: AsyncSession) -> None:
    for table in (LedgerJobEntryRow, LedgerProjectRow, LedgerShockRow):
        await session.exec(delete(table))


def relevant(events: Iterable[EventPayload]) -> list[EventPayload]:
    return [e for e in events if isinstance(e, dt.ProjectState | sr.ClosureAnnounced)]
