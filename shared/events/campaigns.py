"""Events owned by the campaigns service.

No personal data: consultants never appear (their ids are their login subjects, which may
be e-mail addresses); a firm contact's name and phone, visit notes and free-text reasons
stay in the campaigns database. Project leads travel with the firm's consent flag:
funders' topics only ever carry the leads whose firm agreed to share them.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from shared.events.envelope import EventModel, EventPayload
from shared.events.site_registry import NAF_PATTERN, SIRET_PATTERN

VisitOutcome = Literal["reached", "declined", "unreachable", "site_closed"]
ProjectKind = Literal[
    "capacity_extension",
    "new_line",
    "modernisation_automation",
    "decarbonation_energy",
    "rnd_innovation",
    "site_takeover",
    "new_site",
    "skills_training",
    "other",
]
Obstacle = Literal["land", "hiring_skills", "financing", "energy_grid", "permits", "other"]
Maturity = Literal["idea", "study", "ready", "started"]
RedFlagKind = Literal["layoffs", "relocation", "closure"]


class _Part(EventModel):
    """A part nested in an event: strict when written, tolerant when read."""


class CampaignEvent(EventPayload):
    key_field: ClassVar[str] = "campaign_id"

    campaign_id: uuid.UUID


class CampaignLaunched(CampaignEvent):
    event_type: ClassVar[str] = "rebond.campaigns.campaign_launched.v1"
    identity: ClassVar[tuple[str, ...]] = ("campaign_id",)

    shock_id: uuid.UUID
    territory_id: str
    closing_site_id: str = Field(pattern=SIRET_PATTERN)
    closing_naf_code: str = Field(pattern=NAF_PATTERN)
    targets: int = Field(ge=0)
    budget_days: float = Field(gt=0)
    cost_per_visit_days: float = Field(gt=0)
    starts_on: date
    ends_on: date
    launched_at: AwareDatetime


class CampaignReplanned(CampaignEvent):
    event_type: ClassVar[str] = "rebond.campaigns.campaign_replanned.v1"
    identity: ClassVar[tuple[str, ...]] = ("campaign_id", "plan_version")

    plan_version: int = Field(ge=1)
    reason: str = Field(description="what changed: targets, roster, budget, period, sites")
    targets: int = Field(ge=0)
    planned: int = Field(ge=0)
    uncovered: int = Field(ge=0)
    budget_days: float
    days_planned: float
    consultants: int = Field(ge=0)


class CampaignClosed(CampaignEvent):
    event_type: ClassVar[str] = "rebond.campaigns.campaign_closed.v1"
    identity: ClassVar[tuple[str, ...]] = ("campaign_id",)

    closed_at: AwareDatetime
    visits_completed: int
    visits_cancelled: int


class ScheduledVisitItem(_Part):
    visit_id: uuid.UUID
    site_id: str = Field(pattern=SIRET_PATTERN)
    scheduled_on: date


class VisitsScheduled(CampaignEvent):
    """A batch of visits (a whole plan, or what a re-plan changed)."""

    event_type: ClassVar[str] = "rebond.campaigns.visits_scheduled.v1"
    identity: ClassVar[tuple[str, ...]] = ("campaign_id", "plan_version")

    plan_version: int = Field(ge=1)
    visits: list[ScheduledVisitItem]
    cancelled_visit_ids: list[uuid.UUID] = Field(default_factory=list)


class VisitCompleted(CampaignEvent):
    event_type: ClassVar[str] = "rebond.campaigns.visit_completed.v1"
    identity: ClassVar[tuple[str, ...]] = ("visit_id",)

    visit_id: uuid.UUID
    site_id: str = Field(pattern=SIRET_PATTERN)
    outcome: VisitOutcome
    visited_on: date


class ProjectLead(_Part):
    lead_id: uuid.UUID = Field(description="stable id of the lead, chosen by the client")
    kind: ProjectKind
    description: str = Field(max_length=2000, description="the firm's project, in business terms")
    capex_eur: int | None = Field(default=None, ge=0)
    jobs_to_create: int = Field(ge=0)
    horizon_months: int | None = Field(default=None, ge=0, le=240)
    maturity: Maturity
    known_to_public_actors: bool
    obstacles: list[Obstacle] = Field(default_factory=list)
    funding_need_eur: int | None = Field(default=None, ge=0)
    consent_to_share: bool = Field(description="the firm agreed to share it with funders")


class RedFlagItem(_Part):
    kind: RedFlagKind
    horizon_months: int | None = Field(default=None, ge=0, le=120)
    jobs_at_risk: int | None = Field(default=None, ge=0)


class SurveyEvent(EventPayload):
    key_field: ClassVar[str] = "site_id"

    site_id: str = Field(pattern=SIRET_PATTERN)


class SurveySubmitted(SurveyEvent):
    event_type: ClassVar[str] = "rebond.campaigns.survey_submitted.v1"
    identity: ClassVar[tuple[str, ...]] = ("survey_id", "revision")

    survey_id: uuid.UUID
    campaign_id: uuid.UUID
    shock_id: uuid.UUID
    territory_id: str
    visit_id: uuid.UUID
    siren: str = Field(pattern=r"^[0-9]{9}$")
    naf_code: str = Field(pattern=NAF_PATTERN)
    commune_insee: str
    questionnaire_version: str
    headcount: int | None = Field(default=None, ge=0)
    projects: list[ProjectLead]
    red_flags: list[RedFlagItem]
    submitted_at: AwareDatetime
    revision: int = Field(ge=1, description="1 for the first submission, +1 per resubmission")


class RedFlagRaised(SurveyEvent):
    event_type: ClassVar[str] = "rebond.campaigns.red_flag_raised.v1"
    identity: ClassVar[tuple[str, ...]] = ("survey_id", "flag.kind")

    campaign_id: uuid.UUID
    survey_id: uuid.UUID
    territory_id: str
    flag: RedFlagItem
    raised_at: AwareDatetime
