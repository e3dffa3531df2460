"""Read side of the detection service: projects, their timeline, statistics, and the
job-compensation ledger (computed from the ledger projection's rows)."""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.detection.adapters.orm import (
    LedgerJobEntryRow,
    LedgerProjectRow,
    LedgerShockRow,
    ProjectHistoryRow,
    ProjectReportRow,
    ProjectRow,
)
from services.detection.domain.ledger import LedgerProject, Shock, ledger
from services.detection.domain.priority import support_priority
from shared.errors import DomainError


class BadCursor(DomainError):
    status_code = 400
    code = "bad_cursor"


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


def _cursor(row: ProjectRow) -> str:
    raw = f"{row.detected_on.isoformat()}|{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> tuple[date, uuid.UUID]:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        day, project_id = raw.decode().split("|")
        return date.fromisoformat(day), uuid.UUID(project_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor(f"cursor {cursor!r} is not one this API returned") from exc


def public(row: ProjectRow) -> dict[str, Any]:
    priority = support_priority(
        jobs_planned=row.jobs_planned,
        capex_eur=row.capex_eur,
        maturity=row.maturity,
        obstacles=row.obstacles or [],
        hidden=row.hidden,
    )
    return {
        **row.model_dump(exclude={"updated_at"}),
        "priority": priority.score,
        "priority_reasons": list(priority.reasons),
    }


async def list_projects(
    session: AsyncSession, flt: ProjectFilter, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    query = _where(select(ProjectRow), flt).order_by(
        col(ProjectRow.detected_on), col(ProjectRow.id)
    )
    if cursor:
        day, project_id = _uncursor(cursor)
        query = query.where(
            (col(ProjectRow.detected_on) > day)
            | ((col(ProjectRow.detected_on) == day) & (col(ProjectRow.id) > project_id))
        )
    rows = list((await session.exec(query.limit(limit + 1))).all())
    next_cursor = _cursor(rows[limit - 1]) if len(rows) > limit else None
    return [public(r) for r in rows[:limit]], next_cursor


async def stats(session: AsyncSession, flt: ProjectFilter) -> dict[str, Any]:
    rows = (await session.exec(_where(select(ProjectRow), flt))).all()
    live = [r for r in rows if r.stage != "abandoned"]
    hidden = sum(1 for r in live if r.hidden)
    return {
        "projects": len(live),
        "abandoned": len(rows) - len(live),
        "hidden": hidden,
        "hidden_share": round(hidden / len(live), 4) if live else None,
        "jobs_planned": sum(r.jobs_planned for r in live),
        "jobs_created": sum(r.jobs_created for r in rows),
        "under_review": sum(1 for r in live if r.possible_duplicate_of is not None),
        "jobs_under_review": sum(r.jobs_planned for r in live if r.possible_duplicate_of),
        "by_stage": dict(sorted(Counter(r.stage for r in rows).items())),
        "by_origin": dict(sorted(Counter(r.origin for r in live).items())),
        "by_kind": dict(sorted(Counter(r.kind for r in live).items())),
    }


async def timeline(session: AsyncSession, project_id: uuid.UUID) -> list[dict[str, Any]]:
    """Everything that happened to a project, oldest first: reports and recorded events."""
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
    items = [
        {
            "at": r.reported_at,
            "kind": "report",
            "source": r.source,
            "reference": r.reference,
            "detail": r.figures,
        }
        for r in reports
    ] + [
        {
            "at": h.occurred_at,
            "kind": "event",
            "event_type": h.event_type,
            "version": h.version,
            "stage": h.stage,
            "detail": h.detail,
        }
        for h in history
    ]
    # Reports before the event they caused at the same instant.
    return sorted(items, key=lambda i: (i["at"], 0 if i["kind"] == "report" else 1))


async def shock_ledger(
    session: AsyncSession, shock_id: uuid.UUID, until: date | None = None
) -> dict[str, Any] | None:
    shock = await session.get(LedgerShockRow, shock_id)
    if shock is None:
        return None
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
    entries: dict[uuid.UUID, list[tuple[date, int]]] = {}
    for e in (
        await session.exec(
            select(LedgerJobEntryRow).where(col(LedgerJobEntryRow.project_id).in_(in_scope))
        )
    ).all():
        entries.setdefault(e.project_id, []).append((e.created_on, e.jobs_added))
    projects = [
        LedgerProject(
            project_id=r.project_id,
            territory_id=r.territory_id,
            origin=r.origin,
            stage=r.stage,
            jobs_planned=r.jobs_planned,
            jobs_created=r.jobs_created,
            detected_on=r.detected_on,
            qualified_on=r.qualified_on,
            funded_on=r.funded_on,
            job_entries=tuple(sorted(entries.get(r.project_id, []))),
            under_review=r.under_review,
            merged_into=r.merged_into,
        )
        for r in rows
    ]
    return ledger(
        Shock(
            shock_id=shock.shock_id,
            territory_id=shock.territory_id,
            announced_on=shock.announced_on,
            jobs_lost=shock.jobs_lost,
        ),
        projects,
        until=until,
    )


async def ledger_shocks(
    session: AsyncSession, territory_ids: list[str] | None
) -> list[LedgerShockRow]:
    query = select(LedgerShockRow).order_by(col(LedgerShockRow.announced_on))
    if territory_ids is not None:
        query = query.where(col(LedgerShockRow.territory_id).in_(territory_ids))
    return list((await session.exec(query)).all())
