"""Read side of the funding service: the catalogue, a project's matches and plan, and
funders' consented projects, read from the tables into the API's models."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.funding.adapters.orm import (
    ApplicationRow,
    CallRow,
    FundingProjectRow,
    FundingSiteRow,
    MatchRow,
    SchemeRow,
    SelectionRoundRow,
)
from services.funding.adapters.repository import application_of, project_of, site_of
from services.funding.domain.catalogue import Scheme
from services.funding.domain.matching import count_eligible, explain_rejections
from services.funding.domain.projects import FundingProject
from services.funding.entrypoints import schemas as s
from services.funding.service_layer.access import funder_sees, visible
from services.funding.service_layer.matching import Matcher, profile
from shared.auth import Principal
from shared.errors import NotFound

#: rejections listed per project when asked: the near misses matter, not the whole catalogue
REJECTED_SHOWN = 200


async def schemes(
    session: AsyncSession, *, funder: str | None = None, scale: str | None = None
) -> list[s.SchemeOut]:
    query = select(SchemeRow).order_by(col(SchemeRow.id))
    if scale:
        query = query.where(SchemeRow.scale == scale)
    rows = (await session.exec(query)).all()
    return [
        s.SchemeOut.model_validate(r.data)
        for r in rows
        if funder is None or funder in (r.funders or [])
    ]


async def scheme(session: AsyncSession, scheme_id: str) -> s.StoredSchemeOut:
    row = await session.get(SchemeRow, scheme_id)
    if row is None:
        raise NotFound(f"no scheme {scheme_id}")
    return s.StoredSchemeOut.model_validate({**row.data, "version": row.version})


async def calls(session: AsyncSession) -> list[s.CallOut]:
    results: defaultdict[str, list[s.SelectionRoundOut]] = defaultdict(list)
    rounds = select(SelectionRoundRow).order_by(
        col(SelectionRoundRow.decided_on), col(SelectionRoundRow.round)
    )
    for r in (await session.exec(rounds)).all():
        results[r.call_id].append(s.SelectionRoundOut.model_validate(r, from_attributes=True))
    return [
        s.CallOut.model_validate(
            {
                "id": c.id,
                "scheme_id": c.scheme_id,
                "name": c.name,
                **c.data,
                "results": results[c.id],
            }
        )
        for c in (await session.exec(select(CallRow).order_by(col(CallRow.id)))).all()
    ]


async def _visible(
    session: AsyncSession, project_id: uuid.UUID, principal: Principal
) -> tuple[FundingProject, FundingProjectRow]:
    row = await session.get(FundingProjectRow, project_id)
    project = visible(principal, project_id, None if row is None else project_of(row))
    assert row is not None  # visible: it exists
    return project, row


async def matches(
    session: AsyncSession,
    project_id: uuid.UUID,
    principal: Principal,
    matcher: Matcher,
    *,
    limit: int | None = None,
    rejected: bool = False,
    funder: str | None = None,
    scheme_id: str | None = None,
    rejected_limit: int = REJECTED_SHOWN,
) -> s.MatchesOut:
    """The project's eligible schemes as matching stored them (the first ``limit``, best
    first, when given) and how many schemes do not fit; why they do not fit only when
    asked (``rejected``), computed now (rejections are not stored) for ``funder``'s
    schemes, or ``scheme_id``, or the whole catalogue, near misses first."""
    project, _ = await _visible(session, project_id, principal)
    site = await session.get(FundingSiteRow, project.site_id) if project.site_id else None
    prof = profile(project, None if site is None else site_of(site))
    catalogue = await matcher.cache.schemes(session)
    today = matcher.today()
    stored = (
        select(MatchRow)
        .where(MatchRow.project_id == project_id)
        .where(col(MatchRow.eligible).is_(True))
    )
    query = stored.order_by(col(MatchRow.rank))
    rows = (await session.exec(query if limit is None else query.limit(limit))).all()
    if limit is None or len(rows) < limit:
        total = len(rows)
    else:
        counted = select(sa.func.count()).select_from(stored.subquery())
        total = int((await session.exec(counted)).one())
    names = {r.scheme_id: sc.name for r in rows if (sc := catalogue.by_id(r.scheme_id))}
    explained: list[s.RejectedOut] | None = None
    if rejected:
        schemes: Sequence[Scheme] = catalogue
        if funder is not None:
            schemes = catalogue.of_funder(funder)
        if scheme_id is not None:
            schemes = [sc for sc in schemes if sc.id == scheme_id]
        found = explain_rejections(prof, schemes, today, limit=rejected_limit)
        explained = [s.RejectedOut.of(m) for m in found]
    return s.MatchesOut(
        project_id=project_id,
        stage=project.stage,
        firm_size=prof.firm_size,
        firm_size_source=prof.firm_size_source,
        region_code=prof.region_code,
        eligible=[
            s.EligibleOut(
                scheme_id=r.scheme_id,
                scheme_name=names.get(r.scheme_id),
                rank=r.rank,
                score=r.score,
                planned_amount_eur=r.planned_amount_eur,
                criteria=[s.CriterionOut.model_validate(c) for c in r.criteria],
            )
            for r in rows
        ],
        eligible_total=total,
        rejected=explained,
        rejected_total=len(catalogue) - count_eligible(prof, catalogue, today),
    )


async def plan(session: AsyncSession, project_id: uuid.UUID, principal: Principal) -> s.PlanOut:
    project, row = await _visible(session, project_id, principal)
    return s.PlanOut.model_validate(
        {"project_id": project_id, "stage": project.stage, "plan": row.plan}
    )


async def project_applications(
    session: AsyncSession, project_id: uuid.UUID, principal: Principal
) -> list[s.ApplicationOut]:
    """Every application of the project, seen as the funder topic shows them: to the
    crisis cell of its territory, to the funders of its region when the firm consented."""
    await _visible(session, project_id, principal)
    rows = (
        await session.exec(
            select(ApplicationRow)
            .where(ApplicationRow.project_id == project_id)
            .order_by(col(ApplicationRow.submitted_at), col(ApplicationRow.id))
        )
    ).all()
    return [s.ApplicationOut.of(application_of(r)) for r in rows]


async def funder_projects(session: AsyncSession, principal: Principal) -> list[s.FunderProjectOut]:
    """The consented projects of the funder's regions with an eligible match, with those
    matches (only the funder's own schemes unless admin)."""
    consented = select(FundingProjectRow).where(col(FundingProjectRow.consent_to_share).is_(True))
    rows = (await session.exec(consented.order_by(col(FundingProjectRow.project_id)))).all()
    projects = [
        project_of(r)
        for r in rows
        if principal.is_admin
        or funder_sees(principal, r.territory_id, consented=r.consent_to_share)
    ]
    if not projects:
        return []
    eligible = (
        await session.exec(
            select(MatchRow)
            .where(col(MatchRow.project_id).in_([p.project_id for p in projects]))
            .where(col(MatchRow.eligible).is_(True))
            .order_by(col(MatchRow.rank))
        )
    ).all()
    mine: set[str] | None = None
    if not principal.is_admin:
        funders = select(SchemeRow.id, SchemeRow.funders).where(
            col(SchemeRow.id).in_(sorted({m.scheme_id for m in eligible}))
        )
        mine = {
            sid for sid, fs in (await session.exec(funders)).all() if principal.org in (fs or [])
        }
    by_project: defaultdict[uuid.UUID, list[s.FunderMatchOut]] = defaultdict(list)
    for m in eligible:
        if mine is None or m.scheme_id in mine:
            by_project[m.project_id].append(
                s.FunderMatchOut(
                    scheme_id=m.scheme_id, rank=m.rank, planned_amount_eur=m.planned_amount_eur
                )
            )
    return [
        s.FunderProjectOut(
            project_id=p.project_id,
            territory_id=p.territory_id,
            firm_name=p.firm_name,
            kind=p.kind,
            stage=p.stage,
            jobs_planned=p.jobs_planned,
            capex_eur=p.capex_eur,
            funding_need_eur=p.funding_need_eur,
            matches=by_project[p.project_id],
        )
        for p in projects
        if by_project[p.project_id]
    ]
