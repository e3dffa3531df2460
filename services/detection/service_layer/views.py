"""Read side of the detection service: projects, their timeline, statistics, and the
job-compensation ledger (read from each shock's counts, kept by the ledger projection).
Read-only queries returning the API's typed read models; every look-up checks the
caller's territories."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.detection.adapters.ledger_projection import counted, stored_counts
from services.detection.adapters.orm import (
    LedgerJobEntryRow,
    LedgerProjectRow,
    ProjectHistoryRow,
    ProjectReportRow,
    ProjectRow,
    ShockRow,
)
from services.detection.adapters.repository import ShockRepository, project_of
from services.detection.domain.ledger import Ledger, Shock, ledger, ledger_of_counts
from services.detection.domain.stages import Stage
from services.detection.entrypoints import schemas as s
from services.detection.service_layer.access import may_see, territories_of
from shared.auth import Principal
from shared.cursor import encode_cursor, parse_cursor
from shared.errors import NotFound


@dataclass(frozen=True)
class ProjectFilter:
    territory_ids: list[str] | None  # None: all (admin)
    campaign_id: uuid.UUID | None = None
    shock_id: uuid.UUID | None = None
    stage: str | None = None
    origin: str | None = None
    kind: str | None = None
    hidden: bool | None = None
    under_review: bool | None = None


def scope(principal: Principal, territory: str | None = None) -> list[str] | None:
    """The territories a listing covers: the one asked for, else all the caller's (None:
    every territory, for an admin)."""
    if territory is not None:
        if not may_see(principal, territory):
            raise NotFound(f"territory {territory} is outside your token's territories")
        return [territory]
    return territories_of(principal)


def _where(query: Any, flt: ProjectFilter) -> Any:
    # A merged project lives on in the one it was merged into: listing and counting it
    # too would count it twice (it stays readable by id, with `merged_into`).
    query = query.where(col(ProjectRow.merged_into).is_(None))
    if flt.territory_ids is not None:
        query = query.where(col(ProjectRow.territory_id).in_(flt.territory_ids))
    if flt.under_review is not None:
        flagged = col(ProjectRow.possible_duplicate_of)
        query = query.where(flagged.is_not(None) if flt.under_review else flagged.is_(None))
    for name in ("campaign_id", "shock_id", "stage", "origin", "kind", "hidden"):
        value = getattr(flt, name)
        if value is not None:
            query = query.where(getattr(ProjectRow, name) == value)
    return query


def _cursor_of(row: ProjectRow) -> str:
    return encode_cursor(row.detected_on.isoformat(), str(row.id))


def _after(parts: tuple[str, ...]) -> tuple[date, uuid.UUID]:
    return date.fromisoformat(parts[0]), uuid.UUID(parts[1])


async def list_projects(
    session: AsyncSession, flt: ProjectFilter, *, limit: int, cursor: str | None
) -> s.ProjectPage:
    query = _where(select(ProjectRow), flt).order_by(
        col(ProjectRow.detected_on), col(ProjectRow.id)
    )
    if cursor:
        day, project_id = parse_cursor(cursor, _after, 2)
        query = query.where(
            (col(ProjectRow.detected_on) > day)
            | ((col(ProjectRow.detected_on) == day) & (col(ProjectRow.id) > project_id))
        )
    rows = list((await session.exec(query.limit(limit + 1))).all())
    next_cursor = _cursor_of(rows[limit - 1]) if len(rows) > limit else None
    return s.ProjectPage(
        items=[s.ProjectOut.of(project_of(r)) for r in rows[:limit]], next_cursor=next_cursor
    )


async def _visible_row(
    session: AsyncSession, project_id: uuid.UUID, principal: Principal
) -> ProjectRow:
    row = await session.get(ProjectRow, project_id)
    if row is None or not may_see(principal, row.territory_id):
        raise NotFound(f"no project {project_id} in your territories")
    return row


async def project(
    session: AsyncSession, project_id: uuid.UUID, principal: Principal
) -> s.ProjectOut:
    return s.ProjectOut.of(project_of(await _visible_row(session, project_id, principal)))


async def stats(session: AsyncSession, flt: ProjectFilter) -> s.StatsOut:
    rows = (await session.exec(_where(select(ProjectRow), flt))).all()
    live = [r for r in rows if r.stage != Stage.ABANDONED]
    hidden = sum(1 for r in live if r.hidden)
    return s.StatsOut(
        projects=len(live),
        abandoned=len(rows) - len(live),
        hidden=hidden,
        hidden_share=round(hidden / len(live), 4) if live else None,
        jobs_planned=sum(r.jobs_planned for r in live),
        jobs_created=sum(r.jobs_created for r in rows),
        under_review=sum(1 for r in live if r.possible_duplicate_of is not None),
        jobs_under_review=sum(r.jobs_planned for r in live if r.possible_duplicate_of),
        by_stage=dict(sorted(Counter(r.stage for r in rows).items())),
        by_origin=dict(sorted(Counter(r.origin for r in live).items())),
        by_kind=dict(sorted(Counter(r.kind for r in live).items())),
    )


async def timeline(
    session: AsyncSession, project_id: uuid.UUID, principal: Principal
) -> list[s.TimelineItem]:
    """Everything that happened to a project, oldest first: reports and recorded events."""
    await _visible_row(session, project_id, principal)
    reports = (
        await session.exec(
            select(ProjectReportRow).where(ProjectReportRow.project_id == project_id)
        )
    ).all()
    history = (
        await session.exec(
            select(ProjectHistoryRow).where(ProjectHistoryRow.project_id == project_id)
        )
    ).all()
    items: list[s.TimelineItem] = [
        s.ReportItemOut(at=r.reported_at, source=r.source, reference=r.reference, detail=r.figures)
        for r in reports
    ]
    items += [
        s.EventItemOut(
            at=h.occurred_at,
            event_type=h.event_type,
            version=h.version,
            stage=h.stage,
            detail=h.detail,
        )
        for h in history
    ]
    # Reports before the event they caused at the same instant.
    return sorted(items, key=lambda i: (i.at, 0 if i.kind == "report" else 1))


async def shock_ledger(
    session: AsyncSession, shock_id: uuid.UUID, until: date | None = None
) -> Ledger | None:
    shock = await ShockRepository(session).get(shock_id)
    return None if shock is None else await _ledger(session, shock, until)


async def visible_ledger(
    session: AsyncSession, shock_id: uuid.UUID, principal: Principal, until: date | None
) -> Ledger:
    shock = await ShockRepository(session).get(shock_id)
    if shock is None or not may_see(principal, shock.territory_id):
        raise NotFound(f"no closure shock {shock_id} in your territories")
    return await _ledger(session, shock, until)


async def _ledger(session: AsyncSession, shock: Shock, until: date | None) -> Ledger:
    # A few rows, whatever the number of projects. `until` too: it only bounds the series
    # (the totals are the current state), and the counts hold every month.
    return ledger_of_counts(shock, await stored_counts(session, shock.shock_id), until=until)


async def recomputed_ledger(session: AsyncSession, shock: Shock, until: date | None) -> Ledger:
    """The ledger computed from every counted project's row (`domain.ledger.ledger`): the
    reference the kept counts are tested against, and the baseline of the benchmark;
    it reads the whole territory."""
    # The ledger counts projects detected since the announcement: filtered in SQL, and the
    # job entries joined rather than listed by id (no bound on the number of projects).
    in_scope = (
        select(LedgerProjectRow.project_id)
        .where(LedgerProjectRow.territory_id == shock.territory_id)
        .where(col(LedgerProjectRow.detected_on) >= shock.announced_on)
    )
    rows = (
        await session.exec(
            select(LedgerProjectRow)
            .where(LedgerProjectRow.territory_id == shock.territory_id)
            .where(col(LedgerProjectRow.detected_on) >= shock.announced_on)
        )
    ).all()
    entries: dict[uuid.UUID, list[LedgerJobEntryRow]] = {}
    for e in (
        await session.exec(
            select(LedgerJobEntryRow).where(col(LedgerJobEntryRow.project_id).in_(in_scope))
        )
    ).all():
        entries.setdefault(e.project_id, []).append(e)
    projects = [counted(r, entries.get(r.project_id, ())) for r in rows]
    return ledger(shock, projects, until=until)


async def shocks(session: AsyncSession, territory_ids: list[str] | None) -> list[s.ShockOut]:
    query = select(ShockRow).order_by(col(ShockRow.announced_on))
    if territory_ids is not None:
        query = query.where(col(ShockRow.territory_id).in_(territory_ids))
    return [s.ShockOut.model_validate(r, from_attributes=True) for r in await session.exec(query)]
