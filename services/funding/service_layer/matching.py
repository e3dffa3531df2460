"""Matching a project to the catalogue, and telling funders about it.

A project is matched when it is qualified or later and not abandoned (figures checked by
an analyst first), whenever its event arrives and whenever the catalogue changes. Only
eligible matches are stored; a project's rejections are computed on demand. Funders hear
of a match (MatchProposed / MatchUpdated) only when the firm consented to share.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, TypedDict

from services.funding.adapters.repository import CatalogueCache
from services.funding.domain.catalogue import Scheme
from services.funding.domain.matching import (
    IndexedCatalogue,
    Match,
    ProjectProfile,
    evaluate,
    match,
)
from services.funding.domain.plan import IntensityCaps, financing_plan
from services.funding.domain.projects import (
    MATCHABLE,
    FundingProject,
    FundingSite,
    ProjectMatch,
    region_of,
)
from services.funding.service_layer.unit_of_work import UnitOfWork
from shared.clock import Clock
from shared.events import funding as fd
from shared.events.campaigns import ProjectKind
from shared.events.funding import AidType, FirmSize, FirmSizeSource

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


#: INSEE's company categories (categorieEntreprise, décret 2008-1354) → firm sizes. "PME"
#: includes the micro-entreprises and the category alone cannot tell them apart: see
#: `firm_size_of_site`.
_CATEGORY_SIZE: dict[str, FirmSize] = {"PME": "sme", "ETI": "midcap", "GE": "large"}


def firm_size_of_site(site: FundingSite | None) -> tuple[FirmSize | None, FirmSizeSource | None]:
    """The firm's size and where it comes from: its INSEE company category when the
    registry has it (the legal size, the whole firm's), else the estimate from the site's
    headcount band. Within a PME, a site of fewer than 10 employees makes it a
    micro-firm, as the band estimate did: the category does not say, and the firm's own
    band is not among what the sites topic carries (a firm with several small sites
    may so be taken for a micro-firm)."""
    if site is None:
        return None, None
    by_category = _CATEGORY_SIZE.get(site.company_category or "")
    if by_category is not None:
        if by_category == "sme" and firm_size_of(site.headcount_band) == "micro":
            return "micro", "company_category"
        return by_category, "company_category"
    estimate = firm_size_of(site.headcount_band)
    return estimate, "headcount_band" if estimate is not None else None


def department_of(commune_insee: str | None) -> str | None:
    if not commune_insee:
        return None
    return commune_insee[:3] if commune_insee.startswith("97") else commune_insee[:2]


def profile(project: FundingProject, site: FundingSite | None) -> ProjectProfile:
    size, source = firm_size_of_site(site)
    return ProjectProfile(
        project_id=project.project_id,
        territory_id=project.territory_id,
        region_code=region_of(project.territory_id),
        department_code=department_of(site.commune_insee if site else None),
        epci_sirens=(),
        firm_size=size,
        naf_code=project.naf_code,
        kind=project.kind,
        jobs_planned=project.jobs_planned,
        capex_eur=project.capex_eur,
        funding_need_eur=project.funding_need_eur,
        consent_to_share=project.consent_to_share,
        firm_size_source=source,
    )


class _MatchFields(TypedDict):
    """What MatchProposed and MatchUpdated both say of a match."""

    project_id: uuid.UUID
    scheme_id: str
    scheme_name: str
    funders: list[str]
    aid_type: AidType
    rate_min_pct: float | None
    rate_max_pct: float | None
    territory_id: str
    firm_name: str | None
    siren: str | None
    firm_size: FirmSize | None
    firm_size_source: FirmSizeSource | None
    kind: ProjectKind
    jobs_planned: int
    capex_eur: int | None
    funding_need_eur: int | None
    rank: int
    score: float
    planned_amount_eur: int
    criteria: list[fd.CriterionResult]
    occurred_at: datetime


@dataclass(frozen=True)
class Matcher:
    #: the catalogue as the views read it (the unit of work's schemes share it)
    cache: CatalogueCache
    caps: IntensityCaps
    zones: dict[str, Zone]
    clock: Clock
    #: matches first proposed to funders: the best-ranked ones (a project goes to "4 to 6
    #: funders", not to every scheme whose criteria it happens to meet)
    propose_top: int = 10

    def zone(self, territory_id: str) -> Zone:
        return self.zones.get(territory_id, "none")

    def today(self) -> date:
        return self.clock.today()

    async def rematch(self, uow: UnitOfWork, project: FundingProject) -> None:
        """Match the project against the catalogue again: store its matches and plan, and
        tell funders (if the firm consented) of each new, changed or withdrawn match."""
        now, today = self.clock.now(), self.today()
        existing = {m.scheme_id: m for m in await uow.matches.of_project(project.project_id)}
        site = await uow.sites.get(project.site_id) if project.site_id else None
        prof = profile(project, site)
        catalogue: IndexedCatalogue | None = None
        matches: list[Match] = []
        amounts: dict[str, int] = {}
        if project.matchable:
            catalogue = await uow.schemes.all()  # indexed once per catalogue change
            matches = match(prof, catalogue, today)
            plan = financing_plan(prof, matches, self.caps, self.zone(project.territory_id))
            amounts = {line.scheme_id: line.amount_eur for line in plan.lines}
            await uow.projects.save_plan(project.project_id, plan)
        else:
            await uow.projects.save_plan(project.project_id, None)
        for rank, m in enumerate(matches, start=1):
            stored = existing.get(m.scheme.id)
            fresh = ProjectMatch(
                project_id=project.project_id,
                scheme_id=m.scheme.id,
                eligible=True,
                rank=rank,
                score=round(m.score * 100, 2),
                planned_amount_eur=amounts.get(m.scheme.id, 0),
                criteria=m.criteria,
                published=stored.published if stored else False,
            )
            if stored == fresh:
                continue
            proposable = fresh.published or rank <= self.propose_top
            if project.consent_to_share and proposable:
                fields = self._fields(project, prof, m.scheme, fresh, now)
                uow.publish(
                    fd.MatchUpdated(**fields, still_eligible=True)
                    if fresh.published
                    else fd.MatchProposed(**fields)
                )
                fresh.published = True
            if stored is None:
                uow.matches.add(fresh)
            else:
                await uow.matches.save(fresh)
        current = {m.scheme.id for m in matches}
        for scheme_id, stored in existing.items():
            if scheme_id in current or not stored.eligible:
                continue
            if catalogue is None:
                catalogue = await uow.schemes.all()
            stored.eligible, stored.rank, stored.planned_amount_eur = False, None, 0
            scheme = catalogue.by_id(scheme_id)
            if scheme is not None:
                stored.criteria = evaluate(scheme, prof, today)
                if stored.published and project.consent_to_share:
                    fields = self._fields(project, prof, scheme, stored, now)
                    uow.publish(fd.MatchUpdated(**fields, still_eligible=False))
            await uow.matches.save(stored)

    def _fields(
        self,
        project: FundingProject,
        prof: ProjectProfile,
        scheme: Scheme,
        stored: ProjectMatch,
        now: datetime,
    ) -> _MatchFields:
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
            "firm_size_source": prof.firm_size_source,
            "kind": project.kind,
            "jobs_planned": project.jobs_planned,
            "capex_eur": project.capex_eur,
            "funding_need_eur": project.funding_need_eur,
            "rank": stored.rank or 1,
            "score": stored.score,
            "planned_amount_eur": stored.planned_amount_eur,
            "criteria": list(stored.criteria),
            "occurred_at": now,
        }

    async def rematch_all(self, uow: UnitOfWork) -> int:
        projects = await uow.projects.in_stages(MATCHABLE)
        for project in projects:
            await self.rematch(uow, project)
        return len(projects)
