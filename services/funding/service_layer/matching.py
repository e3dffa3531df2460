"""Matching a project to the catalogue, and telling funders about it.

A project is matched when it is qualified or later and not abandoned (figures checked by
an analyst first), whenever its event arrives and whenever the catalogue changes. Only
eligible matches are stored; a project's rejections are computed on demand. Funders hear
of a match (MatchProposed / MatchUpdated) only when the firm consented to share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.funding.adapters.orm import FundingProjectRow, FundingSiteRow, MatchRow
from services.funding.adapters.repository import CatalogueCache
from services.funding.domain.catalogue import Scheme
from services.funding.domain.matching import Match, ProjectProfile, evaluate, match
from services.funding.domain.plan import FinancingPlan, IntensityCaps, financing_plan
from services.funding.service_layer.unit_of_work import FundingUnitOfWork
from shared.events import funding as fd
from shared.events.funding import FirmSize
from shared.messaging.tables import utcnow

MATCHABLE = frozenset({"qualified", "in_funding", "funded", "launched"})
Zone = Literal["afr_a", "afr_c", "none"]

# INSEE headcount band → upper bound of employees, to estimate the firm's size from its
# site's band (an estimate: the legal size is the group's, which Sirene's site file lacks).
_BAND_MAX = {
    "00": 0, "01": 2, "02": 5, "03": 9, "11": 19, "12": 49, "21": 99, "22": 199,
    "31": 249, "32": 499, "41": 999, "42": 1999, "51": 4999, "52": 9999, "53": 10**6,
}  # fmt: skip


def firm_size_of(band: str | None) -> FirmSize | None:
    top = _BAND_MAX.get(band or "")
    if top is None:
        return None
    if top < 10:
        return "micro"
    if top < 250:
        return "sme"
    if top < 5000:
        return "midcap"
    return "large"


def region_of(territory_id: str) -> str | None:
    """ANCT ids carry the region: `ti-3205` is in region 32 (Hauts-de-France)."""
    code = territory_id.removeprefix("ti-")
    return code[:2] if len(code) >= 4 and code[:2].isdigit() else None


def department_of(commune_insee: str | None) -> str | None:
    if not commune_insee:
        return None
    return commune_insee[:3] if commune_insee.startswith("97") else commune_insee[:2]


def profile(project: FundingProjectRow, site: FundingSiteRow | None) -> ProjectProfile:
    return ProjectProfile(
        project_id=project.project_id,
        territory_id=project.territory_id,
        region_code=region_of(project.territory_id),
        department_code=department_of(site.commune_insee if site else None),
        epci_sirens=(),
        firm_size=firm_size_of(site.headcount_band if site else None),
        naf_code=project.naf_code,
        kind=project.kind,  # type: ignore[arg-type]
        jobs_planned=project.jobs_planned,
        capex_eur=project.capex_eur,
        funding_need_eur=project.funding_need_eur,
        consent_to_share=project.consent_to_share,
    )


@dataclass(frozen=True)
class Matcher:
    cache: CatalogueCache
    caps: IntensityCaps
    zones: dict[str, Zone]
    now: Callable[[], datetime]
    #: matches first proposed to funders: the best-ranked ones (a project goes to "4 to 6
    #: funders", not to every scheme whose criteria it happens to meet)
    propose_top: int = 10

    def zone(self, territory_id: str) -> Zone:
        return self.zones.get(territory_id, "none")

    async def profile_of(self, session: AsyncSession, project: FundingProjectRow) -> ProjectProfile:
        site = await session.get(FundingSiteRow, project.site_id) if project.site_id else None
        return profile(project, site)

    async def compute(
        self, uow: FundingUnitOfWork, project: FundingProjectRow
    ) -> tuple[ProjectProfile, list[Match], FinancingPlan]:
        prof = await self.profile_of(uow.session, project)
        schemes = await self.cache.schemes(uow.session)
        matches = match(prof, schemes, self.now().date())
        plan = financing_plan(prof, matches, self.caps, self.zone(project.territory_id))
        return prof, matches, plan

    async def rematch(self, uow: FundingUnitOfWork, project: FundingProjectRow) -> None:
        now = self.now()
        existing = {
            m.scheme_id: m
            for m in (
                await uow.session.exec(
                    select(MatchRow).where(MatchRow.project_id == project.project_id)
                )
            ).all()
        }
        if project.stage in MATCHABLE:
            prof, matches, plan = await self.compute(uow, project)
            project.plan = plan_dict(plan)
        else:
            prof, matches, project.plan = await self.profile_of(uow.session, project), [], None
        amounts = {line.scheme_id: line.amount_eur for line in (plan.lines if matches else ())}
        current: set[str] = set()
        for rank, m in enumerate(matches, start=1):
            current.add(m.scheme.id)
            criteria = [c.model_dump() for c in m.criteria]
            values: dict[str, Any] = {
                "eligible": True,
                "rank": rank,
                "score": round(m.score * 100, 2),
                "planned_amount_eur": amounts.get(m.scheme.id, 0),
                "criteria": criteria,
            }
            row = existing.get(m.scheme.id)
            changed = row is None or any(getattr(row, k) != v for k, v in values.items())
            if row is None:
                row = MatchRow(project_id=project.project_id, scheme_id=m.scheme.id, **values)
                uow.session.add(row)
            elif changed:
                for key, value in values.items():
                    setattr(row, key, value)
                row.updated_at = utcnow()
            proposable = row.published or rank <= self.propose_top
            if changed and project.consent_to_share and proposable:
                kind = fd.MatchUpdated if row.published else fd.MatchProposed
                extra: dict[str, Any] = {"still_eligible": True} if row.published else {}
                uow.publish(kind(**self._state(project, prof, m.scheme, row, now), **extra))
                row.published = True
        for scheme_id, row in existing.items():
            if scheme_id in current or not row.eligible:
                continue
            row.eligible, row.rank, row.planned_amount_eur = False, None, 0
            row.updated_at = utcnow()
            scheme = next(
                (s for s in await self.cache.schemes(uow.session) if s.id == scheme_id), None
            )
            if scheme is not None:
                row.criteria = [c.model_dump() for c in evaluate(scheme, prof, now.date())]
            if row.published and project.consent_to_share and scheme is not None:
                uow.publish(
                    fd.MatchUpdated(
                        **self._state(project, prof, scheme, row, now), still_eligible=False
                    )
                )

    def _state(
        self,
        project: FundingProjectRow,
        prof: ProjectProfile,
        scheme: Scheme,
        row: MatchRow,
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "project_id": project.project_id,
            "scheme_id": scheme.id,
            "scheme_name": scheme.name,
            "funders": list(scheme.funders),
            "aid_type": scheme.aid_type,
            "rate_min_pct": scheme.rate_min_pct,
            "rate_max_pct": scheme.rate_max_pct,
            "territory_id": project.territory_id,
            "firm_name": project.firm_name,
            "siren": project.siren,
            "firm_size": prof.firm_size,
            "kind": project.kind,
            "jobs_planned": project.jobs_planned,
            "capex_eur": project.capex_eur,
            "funding_need_eur": project.funding_need_eur,
            "rank": row.rank or 1,
            "score": row.score,
            "planned_amount_eur": row.planned_amount_eur,
            "criteria": [fd.CriterionResult.model_validate(c) for c in row.criteria],
            "occurred_at": now,
        }

    async def rematch_all(self, uow: FundingUnitOfWork) -> int:
        rows = (
            await uow.session.exec(
                select(FundingProjectRow).where(col(FundingProjectRow.stage).in_(list(MATCHABLE)))
            )
        ).all()
        for row in rows:
            await self.rematch(uow, row)
        return len(rows)


def plan_dict(plan: FinancingPlan) -> dict[str, Any]:
    return {
        "base_eur": plan.base_eur,
        "need_eur": plan.need_eur,
        "cap_pct": plan.cap_pct,
        "cap_eur": plan.cap_eur,
        "lines": [
            {
                "scheme_id": line.scheme_id,
                "aid_type": line.aid_type,
                "amount_eur": line.amount_eur,
                "rate_pct_of_base": line.rate_pct_of_base,
                "grant_equivalent_eur": line.grant_equivalent_eur,
            }
            for line in plan.lines
        ],
        "total_eur": plan.total_eur,
        "grant_equivalent_eur": plan.grant_equivalent_eur,
        "covered_pct_of_need": plan.covered_pct_of_need,
        "remaining_need_eur": plan.remaining_need_eur,
        "notes": list(plan.notes),
    }
