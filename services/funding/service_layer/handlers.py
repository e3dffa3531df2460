"""Reactions to other services' events: the site and project projections, and matching
each project that reaches qualification or changes. They run in the consumer runner's
unit of work, which commits with the inbox row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.funding.domain.projects import MERGED, FundingProject, FundingSite
from services.funding.service_layer.matching import Matcher
from services.funding.service_layer.unit_of_work import FundingUnitOfWork, UnitOfWork
from shared.events import detection as dt
from shared.events import site_registry as sr
from shared.events.catalogue import PROJECTS
from shared.events.envelope import Envelope

Handler = Callable[[FundingUnitOfWork, Envelope[Any]], Awaitable[None]]

#: The projects topic's events that carry a project's whole state (all of them, today).
PROJECT_EVENTS: tuple[type[dt.ProjectState], ...] = tuple(
    t for t in PROJECTS.event_types if issubclass(t, dt.ProjectState)
)


def projected(event: dt.ProjectState) -> FundingProject:
    return FundingProject(
        project_id=event.project_id,
        version=event.version,
        territory_id=event.territory_id,
        site_id=event.site_id,
        siren=event.siren,
        firm_name=event.firm_name,
        naf_code=event.naf_code,
        kind=event.kind,
        stage=MERGED if isinstance(event, dt.ProjectMerged) else event.stage,
        origin=event.origin,
        jobs_planned=event.jobs_planned,
        capex_eur=event.capex_eur,
        funding_need_eur=event.funding_need_eur,
        consent_to_share=event.consent_to_share,
    )


class Handlers:
    def __init__(self, matcher: Matcher) -> None:
        self._matcher = matcher

    def table(self) -> dict[str, Handler]:
        table: dict[str, Handler] = {
            sr.SiteRegistered.event_type: self.site_changed,
            sr.SiteUpdated.event_type: self.site_changed,
        }
        table.update(dict.fromkeys((t.event_type for t in PROJECT_EVENTS), self.project_changed))
        return table

    async def site_changed(self, uow: UnitOfWork, env: Envelope[sr.SiteState]) -> None:
        s = env.payload
        await uow.sites.upsert_newer(
            FundingSite(
                site_id=s.site_id,
                siren=s.siren,
                commune_insee=s.commune_insee,
                headcount_band=s.headcount_band,
                company_category=s.company_category,
                version=s.version,
            )
        )

    async def project_changed(self, uow: UnitOfWork, env: Envelope[dt.ProjectState]) -> None:
        project = projected(env.payload)
        if not await uow.projects.upsert_newer(project):
            return  # a replay or an older version: matching already reflects newer facts
        await self._matcher.rematch(uow, project)
