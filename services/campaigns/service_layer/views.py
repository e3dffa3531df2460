"""Read side of the campaigns service: straight queries for the API, returning its read
models (`entrypoints.schemas`). Read-only: nothing here changes a row."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.campaigns.adapters.orm import (
    CampaignRow,
    CampaignSiteRow,
    SurveyRow,
    TargetRow,
    VisitRow,
)
from services.campaigns.entrypoints import schemas as s
from services.campaigns.service_layer import access
from shared.auth import Principal
from shared.cursor import encode_cursor, parse_cursor
from shared.errors import NotFound


async def _campaign(
    session: AsyncSession, campaign_id: uuid.UUID, principal: Principal
) -> CampaignRow:
    row = await session.get(CampaignRow, campaign_id)
    if row is None or not access.may_see(principal, row.territory_id):
        raise NotFound(f"no campaign {campaign_id} in your territories")
    return row


async def campaigns(session: AsyncSession, principal: Principal) -> list[s.CampaignOut]:
    """The campaigns of the caller's territories (every one for an admin), latest first."""
    query = select(CampaignRow).order_by(col(CampaignRow.launched_at).desc())
    territories = access.territories_of(principal)
    if territories is not None:
        query = query.where(col(CampaignRow.territory_id).in_(territories))
    return [await _summary(session, row) for row in (await session.exec(query)).all()]


async def campaign(
    session: AsyncSession, campaign_id: uuid.UUID, principal: Principal
) -> s.CampaignOut:
    return await _summary(session, await _campaign(session, campaign_id, principal))


async def current_visits(session: AsyncSession, campaign_id: uuid.UUID) -> dict[str, VisitRow]:
    rows = (
        await session.exec(
            select(VisitRow)
            .where(VisitRow.campaign_id == campaign_id)
            .order_by(col(VisitRow.updated_at))
        )
    ).all()
    current: dict[str, VisitRow] = {}
    for v in rows:
        if v.site_id not in current or current[v.site_id].status == "cancelled":
            current[v.site_id] = v
    return current


async def _summary(session: AsyncSession, row: CampaignRow) -> s.CampaignOut:
    # Two columns of each target and visit, not ORM entities: a campaign of a 5,000-site
    # territory has as many targets, and this summary is what `GET /campaigns` lists.
    targets = (
        await session.exec(
            select(TargetRow.active, TargetRow.uncovered_reason).where(
                TargetRow.campaign_id == row.id
            )
        )
    ).all()
    current: dict[str, str] = {}
    for site_id, visit_status in (
        await session.exec(
            select(VisitRow.site_id, VisitRow.status)
            .where(VisitRow.campaign_id == row.id)
            .order_by(col(VisitRow.updated_at))
        )
    ).all():
        # as `current_visits`: a site's first visit not cancelled, else its last one
        if site_id not in current or current[site_id] == "cancelled":
            current[site_id] = visit_status
    active = [uncovered for is_active, uncovered in targets if is_active]
    statuses = Counter(current.values())
    planned = statuses["planned"]
    return s.CampaignOut(
        id=row.id,
        shock_id=row.shock_id,
        territory_id=row.territory_id,
        closing_site_id=row.closing_site_id,
        status=row.status,
        budget_days=row.budget_days,
        cost_per_visit_days=row.cost_per_visit_days,
        daily_cap=row.daily_cap,
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        roster=list(row.roster or []),
        plan_version=row.plan_version,
        targets=len(active),
        planned=planned,
        uncovered=sum(1 for uncovered in active if uncovered),
        completed=statuses["completed"],
        days_planned=round((planned + statuses["completed"]) * row.cost_per_visit_days, 3),
        launched_at=row.launched_at,
    )


async def plan(session: AsyncSession, campaign_id: uuid.UUID, principal: Principal) -> s.PlanOut:
    """Every target with its priority, reasons, and current visit or uncovered reason."""
    row = await _campaign(session, campaign_id, principal)
    targets = (
        await session.exec(
            select(TargetRow)
            .where(TargetRow.campaign_id == row.id)
            .order_by(col(TargetRow.priority_score).desc(), col(TargetRow.site_id))
        )
    ).all()
    visits = await current_visits(session, row.id)
    names = await _names(session, [t.site_id for t in targets])
    out = []
    for t in targets:
        v = visits.get(t.site_id)
        if not t.active:
            status = "removed"
        elif v is not None and v.status in ("planned", "completed"):
            status = v.status
        else:
            status = "uncovered"
        live = v if v is not None and v.status != "cancelled" else None
        out.append(
            s.PlanTargetOut(
                site_id=t.site_id,
                name=names.get(t.site_id),
                commune_insee=t.commune_insee,
                naf_code=t.naf_code,
                headcount_band=t.headcount_band,
                priority=t.priority_score,
                reasons=list(t.priority_reasons or []),
                visit_id=live.id if live else None,
                consultant_id=live.consultant_id if live else None,
                scheduled_on=live.scheduled_on if live else None,
                status=status,
                outcome=live.outcome if live and live.status == "completed" else None,
                uncovered_reason=t.uncovered_reason,
                lon=t.lon,
                lat=t.lat,
            )
        )
    return s.PlanOut(campaign_id=row.id, plan_version=row.plan_version, targets=out)


async def _names(session: AsyncSession, site_ids: list[str]) -> dict[str, str | None]:
    if not site_ids:
        return {}
    rows = await session.exec(
        select(CampaignSiteRow.site_id, CampaignSiteRow.name).where(
            col(CampaignSiteRow.site_id).in_(site_ids)
        )
    )
    return dict(rows.all())


def _agenda_key(parts: tuple[str, ...]) -> tuple[date, int, uuid.UUID]:
    day, order, visit_id = parts
    position = int(order)
    if not 0 <= position < 2**31:  # a day's order, as the column holds it
        raise ValueError(f"order {order} out of range")
    return date.fromisoformat(day), position, uuid.UUID(visit_id)


def agenda_scope(principal: Principal) -> tuple[str, list[str] | None]:
    """Whose agenda a caller reads, and within which territories: its own subject, and
    its token's territories (None: every territory, for an admin). A subject alone is no
    scope: consultants of two territories may share one (`consultant-1`)."""
    return principal.subject, access.territories_of(principal)


_AGENDA_STATEMENTS: dict[tuple[int | None, bool, bool], sa.Executable] = {}
#: from this many territories on, one statement with an expanding IN list
_MANY = 8


def _agenda_statement(
    *, territories: int | None, include_done: bool, after_cursor: bool
) -> sa.Executable:
    """The agenda query, built once per shape with bound parameters: building and hashing
    a statement per request cost more than running it. The shape: how many territories
    bound (None: every territory; one, the usual token, `= :territory_0`; `_MANY`: any
    number, as an expanding list), completed
    visits or not, after a cursor or not; no "expanding" IN list for the usual shapes,
    whose SQL SQLAlchemy would render again at every execution. Plain columns, not ORM
    entities: identity-mapped objects cost more than the query itself."""
    key = (territories, include_done, after_cursor)
    known = _AGENDA_STATEMENTS.get(key)
    if known is not None:
        return known
    visits_t: sa.Table = VisitRow.__table__  # type: ignore[attr-defined]
    sites_t: sa.Table = CampaignSiteRow.__table__  # type: ignore[attr-defined]
    campaigns_t: sa.Table = CampaignRow.__table__  # type: ignore[attr-defined]
    v, site, campaign = visits_t.c, sites_t.c, campaigns_t.c
    statement: Any = (
        sa.select(
            v.id,
            v.campaign_id,
            v.site_id,
            site.name,
            site.commune_insee,
            site.naf_code,
            site.headcount_band,
            site.lon,
            site.lat,
            v.scheduled_on,
            v.day_order,
            v.status,
            v.outcome,
            v.version,
        )
        .select_from(
            visits_t.outerjoin(sites_t, site.site_id == v.site_id).join(
                campaigns_t, campaign.id == v.campaign_id
            )
        )
        .where(v.consultant_id == sa.bindparam("consultant_id"), campaign.status == "active")
        .where(
            v.scheduled_on >= sa.bindparam("start"),
            v.scheduled_on <= sa.bindparam("end"),
            # not `in_([...])`: SQLAlchemy makes a literal list an expanding parameter
            sa.or_(v.status == "planned", v.status == "completed")
            if include_done
            else v.status == "planned",
        )
        .order_by(v.scheduled_on, v.day_order, v.id)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )
    if territories == _MANY:
        statement = statement.where(
            campaign.territory_id.in_(sa.bindparam("territories", expanding=True))
        )
    elif territories == 1:
        statement = statement.where(campaign.territory_id == sa.bindparam("territory_0"))
    elif territories == 0:  # a token without territories: no agenda
        statement = statement.where(sa.false())
    elif territories is not None:
        bound: list[Any] = [sa.bindparam(f"territory_{n}") for n in range(territories)]
        statement = statement.where(campaign.territory_id.in_(bound))
    if after_cursor:
        statement = statement.where(
            sa.tuple_(v.scheduled_on, v.day_order, v.id)
            > sa.tuple_(
                sa.bindparam("after_day", type_=v.scheduled_on.type),
                sa.bindparam("after_order", type_=v.day_order.type),
                sa.bindparam("after_id", type_=v.id.type),
            )
        )
    built: sa.Executable = statement
    _AGENDA_STATEMENTS[key] = built
    return built


async def my_visits(
    conn: AsyncConnection,
    consultant: Principal,
    *,
    start: date,
    end: date,
    limit: int,
    cursor: str | None,
    include_done: bool,
) -> s.MyVisitsOut:
    """A consultant's visits between two days, in agenda order (day, order), keyset-paged:
    the caller's own visits in its token's territories (`agenda_scope`). One statement on
    `conn` (the API gives it a connection in autocommit: no BEGIN and ROLLBACK around a
    single read)."""
    consultant_id, territories = agenda_scope(consultant)
    params: dict[str, Any] = {
        "consultant_id": consultant_id,
        "start": start,
        "end": end,
        "limit": limit + 1,
    }
    shape: int | None = None
    if territories is not None:
        shape = len(territories) if len(territories) < _MANY else _MANY
        if shape == _MANY:
            params["territories"] = territories
        for n, territory in enumerate(territories if shape != _MANY else ()):
            params[f"territory_{n}"] = territory
    if cursor:
        params["after_day"], params["after_order"], params["after_id"] = parse_cursor(
            cursor, _agenda_key, 3
        )
    statement = _agenda_statement(
        territories=shape,
        include_done=include_done,
        after_cursor=bool(cursor),
    )
    rows = (await conn.execute(statement, params)).all()
    items = [
        s.MyVisitOut(
            id=r[0],
            campaign_id=r[1],
            site_id=r[2],
            name=r[3],
            commune=r[4] or "",
            naf=r[5] or "",
            band=r[6],
            lon=r[7],
            lat=r[8],
            day=r[9],
            order=r[10],
            status=r[11],
            outcome=r[12],
            v=r[13],
        )
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        # Only scheduled visits are listed (the query bounds the day), so a day is known.
        next_cursor = encode_cursor(last[9].isoformat(), str(last[10]), str(last[0]))
    return s.MyVisitsOut(items=items, next_cursor=next_cursor)


async def _latest_surveys(session: AsyncSession, campaign_id: uuid.UUID) -> dict[str, SurveyRow]:
    """Each surveyed site's latest revision (what the firm says now)."""
    latest: dict[str, SurveyRow] = {}
    for survey_row in (
        await session.exec(
            select(SurveyRow)
            .where(SurveyRow.campaign_id == campaign_id)
            .order_by(col(SurveyRow.revision))
        )
    ).all():
        latest[survey_row.site_id] = survey_row
    return latest


async def red_flags(
    session: AsyncSession, campaign_id: uuid.UUID, principal: Principal
) -> list[s.RedFlagOut]:
    """Each site's red flags as its latest survey states them (a revision that drops a
    flag withdraws it), most jobs at risk first."""
    row = await _campaign(session, campaign_id, principal)
    latest = await _latest_surveys(session, row.id)
    flagged = {site: survey for site, survey in latest.items() if survey.red_flags}
    names = await _names(session, list(flagged))
    communes = dict(
        (
            await session.exec(
                select(TargetRow.site_id, TargetRow.commune_insee).where(
                    TargetRow.campaign_id == row.id, col(TargetRow.site_id).in_(list(flagged))
                )
            )
        ).all()
    )
    out = [
        s.RedFlagOut(
            site_id=site,
            name=names.get(site),
            commune_insee=communes.get(site),
            kind=str(flag["kind"]),
            horizon_months=_int_or_none(flag.get("horizon_months")),
            jobs_at_risk=_int_or_none(flag.get("jobs_at_risk")),
            reported_at=survey.submitted_at,
            visit_id=survey.visit_id,
        )
        for site, survey in flagged.items()
        for flag in survey.red_flags
    ]
    out.sort(key=lambda f: (-(f.jobs_at_risk or 0), f.site_id, f.kind))
    return out


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def progress(
    session: AsyncSession, campaign_id: uuid.UUID, principal: Principal
) -> s.ProgressOut:
    """Visits, reach, budget used, projects, hidden share, red flags; per consultant and
    per commune."""
    row = await _campaign(session, campaign_id, principal)
    targets = {
        t.site_id: t
        for t in (
            await session.exec(select(TargetRow).where(TargetRow.campaign_id == row.id))
        ).all()
        if t.active
    }
    visits = await current_visits(session, row.id)
    latest = await _latest_surveys(session, row.id)

    def blank() -> dict[str, int]:
        return {"targets": 0, "planned": 0, "visited": 0, "reached": 0, "projects": 0}

    per_consultant: dict[str, dict[str, int]] = defaultdict(blank)
    per_commune: dict[str, dict[str, int]] = defaultdict(blank)
    visited = reached = planned = 0
    projects = hidden = jobs = flags = 0
    for site_id, target in targets.items():
        per_commune[target.commune_insee]["targets"] += 1
        v = visits.get(site_id)
        if v is None or v.status == "cancelled":
            continue
        buckets = (per_consultant[v.consultant_id], per_commune[target.commune_insee])
        if v.status == "planned":
            planned += 1
            for b in buckets:
                b["planned"] += 1
        elif v.status == "completed":
            visited += 1
            for b in buckets:
                b["visited"] += 1
            if v.outcome == "reached":
                reached += 1
                for b in buckets:
                    b["reached"] += 1
        survey = latest.get(site_id)
        if survey is not None:
            n = len(survey.projects)
            projects += n
            hidden += sum(1 for p in survey.projects if not p.get("known_to_public_actors"))
            jobs += sum(int(str(p.get("jobs_to_create") or 0)) for p in survey.projects)
            flags += len(survey.red_flags)
            for b in buckets:
                b["projects"] += n
    return s.ProgressOut(
        campaign_id=row.id,
        targets=len(targets),
        planned=planned,
        uncovered=sum(1 for t in targets.values() if t.uncovered_reason),
        visited=visited,
        reached=reached,
        reached_rate=round(reached / visited, 4) if visited else None,
        days_used=round(visited * row.cost_per_visit_days, 3),
        budget_days=row.budget_days,
        projects=projects,
        projects_hidden=hidden,
        hidden_share=round(hidden / projects, 4) if projects else None,
        jobs_in_projects=jobs,
        red_flags=flags,
        per_consultant=_breakdowns(per_consultant),
        per_commune=_breakdowns(per_commune),
    )


def _breakdowns(buckets: dict[str, dict[str, int]]) -> list[s.BreakdownOut]:
    return [s.BreakdownOut(key=key, **counts) for key, counts in sorted(buckets.items())]
