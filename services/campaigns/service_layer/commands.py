"""The crisis cell's and the consultants' commands. Each runs inside the caller's unit of
work and never commits: the caller (the command bus) commits once, with the request's
idempotency key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from services.campaigns.domain.model import (
    Campaign,
    InvalidCampaignChange,
    Outcome,
    Survey,
    SurveyAnswers,
)
from services.campaigns.service_layer import access
from services.campaigns.service_layer.unit_of_work import CampaignsUnitOfWork
from shared.auth import Principal, Role
from shared.clock import Clock
from shared.errors import NotFound


async def load_campaign(
    uow: CampaignsUnitOfWork, campaign_id: uuid.UUID, principal: Principal
) -> Campaign:
    campaign = await uow.campaigns.get(campaign_id)
    if campaign is None or not access.may_see(principal, campaign.territory_id):
        raise NotFound(f"no campaign {campaign_id} in your territories")
    return campaign


async def campaign_of_visit(
    uow: CampaignsUnitOfWork, visit_id: uuid.UUID, principal: Principal
) -> Campaign:
    campaign_id = await uow.campaigns.campaign_of_visit(visit_id)
    if campaign_id is None:
        raise NotFound(f"no visit {visit_id}")
    return await load_campaign(uow, campaign_id, principal)


async def replan(
    uow: CampaignsUnitOfWork, campaign_id: uuid.UUID, principal: Principal, clock: Clock
) -> Campaign:
    campaign = await load_campaign(uow, campaign_id, principal)
    campaign.replan("re-planned by the crisis cell", today=clock.today(), keep_assignments=False)
    return campaign


async def add_targets(
    uow: CampaignsUnitOfWork,
    campaign_id: uuid.UUID,
    site_ids: list[str],
    principal: Principal,
    clock: Clock,
) -> Campaign:
    campaign = await load_campaign(uow, campaign_id, principal)
    sites = []
    for site_id in site_ids:
        site = await uow.sites.get(site_id)
        if site is None:
            raise NotFound(f"site {site_id} is unknown to the campaigns service")
        if campaign.territory_id not in site.territory_ids:
            raise InvalidCampaignChange(
                f"site {site_id} is not in territory {campaign.territory_id}"
            )
        if site.status == "closed":
            raise InvalidCampaignChange(f"site {site_id} is closed")
        sites.append(site.target())
    campaign.add_targets(sites, today=clock.today(), manual=True)
    return campaign


async def remove_target(
    uow: CampaignsUnitOfWork,
    campaign_id: uuid.UUID,
    site_id: str,
    principal: Principal,
    clock: Clock,
) -> Campaign:
    campaign = await load_campaign(uow, campaign_id, principal)
    campaign.remove_target(site_id, today=clock.today(), manual=True, reason="target removed")
    return campaign


async def change_roster(
    uow: CampaignsUnitOfWork,
    campaign_id: uuid.UUID,
    add: list[str],
    remove: list[str],
    principal: Principal,
    clock: Clock,
) -> Campaign:
    campaign = await load_campaign(uow, campaign_id, principal)
    campaign.change_roster(add=add, remove=remove, today=clock.today())
    return campaign


@dataclass(frozen=True)
class Terms:
    """The campaign's terms a crisis cell may change; None keeps the current value."""

    budget_days: float | None = None
    cost_per_visit_days: float | None = None
    daily_cap: int | None = None
    ends_on: date | None = None


async def change_terms(
    uow: CampaignsUnitOfWork,
    campaign_id: uuid.UUID,
    terms: Terms,
    principal: Principal,
    clock: Clock,
) -> Campaign:
    campaign = await load_campaign(uow, campaign_id, principal)
    campaign.change_terms(
        today=clock.today(),
        budget_days=terms.budget_days,
        cost_per_visit_days=terms.cost_per_visit_days,
        daily_cap=terms.daily_cap,
        ends_on=terms.ends_on,
    )
    return campaign


async def close(
    uow: CampaignsUnitOfWork, campaign_id: uuid.UUID, principal: Principal, clock: Clock
) -> Campaign:
    campaign = await load_campaign(uow, campaign_id, principal)
    campaign.close(now=clock.now())
    return campaign


def acting_for_others(principal: Principal) -> bool:
    """A crisis cell member or an admin may report for a consultant (e.g. a phone call)."""
    return principal.is_admin or Role.CRISIS_CELL in principal.roles


@dataclass(frozen=True)
class OutcomeReport:
    visit_id: uuid.UUID
    outcome: Outcome
    reason: str | None
    visited_on: date
    today: date  # the reporter's today: visited_on may not be later


async def record_outcome(
    uow: CampaignsUnitOfWork, report: OutcomeReport, principal: Principal
) -> bool:
    """True when recorded; False when the same outcome was already recorded (a retry)."""
    campaign = await campaign_of_visit(uow, report.visit_id, principal)
    return campaign.record_outcome(
        report.visit_id,
        consultant_id=principal.subject,
        outcome=report.outcome,
        reason=report.reason,
        visited_on=report.visited_on,
        today=report.today,
        acting_for_others=acting_for_others(principal),
    )


async def submit_survey(
    uow: CampaignsUnitOfWork,
    visit_id: uuid.UUID,
    answers: SurveyAnswers,
    principal: Principal,
    clock: Clock,
) -> Survey:
    campaign = await campaign_of_visit(uow, visit_id, principal)
    return campaign.submit_survey(
        visit_id,
        consultant_id=principal.subject,
        answers=answers,
        now=clock.now(),
        acting_for_others=acting_for_others(principal),
    )
