"""Reactions to other services' events: the site and project projections, and matching
each project that reaches qualification or changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.funding.adapters.orm import FundingProjectRow, FundingSiteRow
from services.funding.service_layer.matching import Matcher
from services.funding.service_layer.unit_of_work import FundingUnitOfWork
from shared.events import detection as dt
from shared.events import site_registry as sr
from shared.events.envelope import Envelope

Handler = Callable[[FundingUnitOfWork, Envelope[Any]], Any]

PROJECT_EVENTS = (
    dt.ProjectDetected,
    dt.ProjectUpdated,
    dt.ProjectQualified,
    dt.ProjectStageChanged,
    dt.JobsCreated,
    dt.ProjectAbandoned,
    dt.ProjectMerged,
)

#: The funding projection's stage of a project merged into another: matched no more
#: (not in MATCHABLE), its proposals withdrawn; the project it was merged into carries on.
MERGED = "merged"


class Handlers:
    def __init__(self, matcher: Matcher) -> None:
        self._matcher = matcher

    def table(self) -> dict[str, Handler]:
        table: dict[str, Handler] = {
            sr.SiteRegistered.event_type: self.site_changed,
            sr.SiteUpdated.event_type: self.site_changed,
        }
        table.update(dict.fromkeys((m.event_type for m in PROJECT_EVENTS), self.project_changed))
        return table

    async def site_changed(self, uow: FundingUnitOfWork, env: Envelope[sr.SiteState]) -> None:
        s = env.payload
        row = await uow.session.get(FundingSiteRow, s.site_id)
        if row is None:
            uow.session.add(
                FundingSiteRow(
                    site_id=s.site_id,
                    siren=s.siren,
                    commune_insee=s.commune_insee,
                    headcount_band=s.headcount_band,
                    version=s.version,
                )
            )
        elif row.version < s.version:
            row.commune_insee, row.headcount_band, row.version = (
                s.commune_insee,
                s.headcount_band,
                s.version,
            )

    async def project_changed(self, uow: FundingUnitOfWork, env: Envelope[dt.ProjectState]) -> None:
        p = env.payload
        row = await uow.session.get(FundingProjectRow, p.project_id, with_for_update=True)
        if row is not None and row.version >= p.version:
            return  # a replay or an older version: matching already reflects newer facts
        values = {
            "version": p.version,
            "territory_id": p.territory_id,
            "site_id": p.site_id,
            "siren": p.siren,
            "firm_name": p.firm_name,
            "naf_code": p.naf_code,
            "kind": p.kind,
            "stage": MERGED if isinstance(p, dt.ProjectMerged) else p.stage,
            "origin": p.origin,
            "jobs_planned": p.jobs_planned,
            "capex_eur": p.capex_eur,
            "funding_need_eur": p.funding_need_eur,
            "consent_to_share": p.consent_to_share,
        }
        if row is None:
            row = FundingProjectRow(project_id=p.project_id, **values)  # type: ignore[arg-type]
            uow.session.add(row)
            await uow.session.flush()
        else:
            for key, value in values.items():
                setattr(row, key, value)
        await self._matcher.rematch(uow, row)
