"""Reactions to other services' events (and to our own, for the ledger). Each runs in
the consumer's transaction with its inbox row: a redelivered event changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

from services.detection.domain.matching import ProjectKey, lookalike_reason
from services.detection.domain.model import Figures, Project, Report
from services.detection.domain.sites import Site
from services.detection.domain.stages import IllegalTransition, Stage, reached
from services.detection.service_layer.unit_of_work import DetectionUnitOfWork
from shared.clock import Clock
from shared.events import campaigns as cp
from shared.events import funding as fd
from shared.events import site_registry as sr
from shared.events.catalogue import PROJECTS
from shared.events.envelope import Envelope, EventPayload
from shared.logging import get_logger
from shared.messaging.consumer import Handler, PermanentError

log = get_logger(__name__)

#: The stage a funder's decision moves a project to; a payment moves none.
DECISION_STAGES: dict[type[fd.FundingDecision], Stage] = {
    fd.ApplicationSubmitted: Stage.IN_FUNDING,
    fd.AwardGranted: Stage.FUNDED,
    fd.AwardRefused: Stage.QUALIFIED,
}


async def origin_of(uow: DetectionUnitOfWork, siren: str | None, territory_id: str) -> str:
    """Endogenous when the firm has a site in the territory, exogenous otherwise."""
    if siren and await uow.sites.firm_has_site_in(siren, territory_id):
        return "endogenous"
    return "exogenous"


async def find_lookalike(uow: DetectionUnitOfWork, key: ProjectKey) -> tuple[uuid.UUID, str] | None:
    """A live project the report looks like (same firm and kind in the territory), with
    the reason: the new project is flagged with it, never merged into it."""
    for candidate in await uow.projects.live_of(key.territory_id, key.kind):
        reason = lookalike_reason(candidate.key(), key)
        if reason is not None:
            return candidate.id, f"{reason}: possibly project {candidate.id}"
    return None


class MainHandlers:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def table(self) -> dict[str, Handler[DetectionUnitOfWork]]:
        return {
            sr.SiteRegistered.event_type: self.site_changed,
            sr.SiteUpdated.event_type: self.site_changed,
            sr.SiteClosed.event_type: self.site_closed,
            cp.SurveySubmitted.event_type: self.survey_submitted,
            **{decision.event_type: self.funding_decision for decision in DECISION_STAGES},
            fd.PaymentMade.event_type: self.funding_decision,
        }

    async def site_changed(self, uow: DetectionUnitOfWork, env: Envelope[sr.SiteState]) -> None:
        await uow.sites.upsert(Site.of(env.payload))

    async def site_closed(self, uow: DetectionUnitOfWork, env: Envelope[sr.SiteClosed]) -> None:
        await uow.sites.close(env.payload.site_id, env.payload.version)

    async def survey_submitted(
        self, uow: DetectionUnitOfWork, env: Envelope[cp.SurveySubmitted]
    ) -> None:
        survey = env.payload
        site = await uow.sites.get(survey.site_id)
        firm_name = site.name if site is not None else None
        origin = await origin_of(uow, survey.siren, survey.territory_id)
        if origin == "exogenous" and site is None:
            # The surveyed site is in the territory by construction; without its site
            # event yet, the survey itself says so.
            origin = "endogenous"
        reference = f"survey {survey.survey_id} rev {survey.revision}"
        for lead in survey.projects:
            report = Report(source="survey", reference=reference, reported_at=survey.submitted_at)
            figures = Figures(
                description=lead.description,
                jobs_planned=lead.jobs_to_create,
                capex_eur=lead.capex_eur,
                funding_need_eur=lead.funding_need_eur,
                maturity=lead.maturity,
                obstacles=tuple(lead.obstacles),
                consent_to_share=lead.consent_to_share,
            )
            hidden = not lead.known_to_public_actors
            # Only the lead id (a resubmission: revision 2 or later) updates a project.
            project = await uow.projects.by_lead(lead.lead_id)
            if project is not None:
                project.merge_report(
                    report, figures, now=self._clock.now(), lead_id=lead.lead_id, hidden=hidden
                )
                continue
            key = ProjectKey(
                siren=survey.siren,
                kind=lead.kind,
                territory_id=survey.territory_id,
                firm_name=firm_name,
                site_id=survey.site_id,
            )
            uow.projects.add(
                Project.detect(
                    key,
                    figures,
                    origin=origin,
                    hidden=hidden,
                    report=report,
                    now=self._clock.now(),
                    naf_code=survey.naf_code,
                    shock_id=survey.shock_id,
                    campaign_id=survey.campaign_id,
                    detected_on=survey.submitted_at.date(),
                    lead_id=lead.lead_id,
                    looks_like=await find_lookalike(uow, key),
                )
            )

    async def funding_decision(
        self, uow: DetectionUnitOfWork, env: Envelope[fd.FundingDecision]
    ) -> None:
        decision = env.payload
        project = await uow.projects.get(decision.project_id)
        if project is None:
            raise PermanentError(f"funding decision on unknown project {decision.project_id}")
        if project.merged_into is not None:
            raise PermanentError(
                f"funding decision on project {project.id}, merged into {project.merged_into}:"
                " the funder must decide on that project"
            )
        target = DECISION_STAGES.get(type(decision))
        if target is None:
            return  # a payment changes no stage
        if target is not Stage.FUNDED and reached(project.stage, Stage.FUNDED):
            return  # another scheme's application or refusal: the project is funded already
        if target is Stage.QUALIFIED and project.stage is not Stage.IN_FUNDING:
            return
        try:
            project.move_to(
                target,
                now=self._clock.now(),
                reason=f"{decision.event_type} by {decision.funder} ({decision.scheme_id})",
                source="funding",
            )
        except IllegalTransition as exc:
            raise PermanentError(str(exc)) from exc


class LedgerHandlers:
    """The ledger's projection: our own project events and the closure announcements."""

    def table(self) -> dict[str, Handler[DetectionUnitOfWork]]:
        events: tuple[type[EventPayload], ...] = (*PROJECTS.event_types, sr.ClosureAnnounced)
        return {event.event_type: self.apply for event in events}

    async def apply(self, uow: DetectionUnitOfWork, env: Envelope[Any]) -> None:
        await uow.ledger.apply([env.payload])
        if isinstance(env.payload, sr.ClosureAnnounced):
            # Rare and decisive: the jobs to compensate enter the ledger.
            log.info(
                "closure announcement entered in the ledger",
                shock_id=str(env.payload.shock_id),
                jobs_lost=env.payload.jobs_lost,
            )
