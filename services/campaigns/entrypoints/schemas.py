"""The campaigns API's request and response models. Consultants' payloads are compact:
short field lists, nulls omitted, dates as ISO strings."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.events.campaigns import Maturity, Obstacle, ProjectKind, RedFlagKind, VisitOutcome

QUESTIONNAIRE_VERSION = "2026-1"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CampaignSummary(BaseModel):
    id: uuid.UUID
    shock_id: uuid.UUID
    territory_id: str
    closing_site_id: str
    status: str
    budget_days: float
    cost_per_visit_days: float
    daily_cap: int
    starts_on: date
    ends_on: date
    roster: list[str]
    plan_version: int
    targets: int
    planned: int
    uncovered: int
    completed: int
    days_planned: float
    launched_at: AwareDatetime


class PlanTarget(BaseModel):
    site_id: str
    name: str | None = None
    commune_insee: str
    naf_code: str
    headcount_band: str | None = None
    priority: float
    reasons: list[str]
    visit_id: uuid.UUID | None = None
    consultant_id: str | None = None
    scheduled_on: date | None = None
    status: str = Field(description="planned, completed, uncovered or removed")
    uncovered_reason: str | None = None


class CampaignPlan(BaseModel):
    campaign_id: uuid.UUID
    plan_version: int
    targets: list[PlanTarget]


class TargetsAdd(_In):
    site_ids: list[str] = Field(min_length=1, max_length=500)


class RosterChange(_In):
    add: list[str] = Field(default_factory=list, description="consultant ids (token `sub`)")
    remove: list[str] = Field(default_factory=list)


class TermsChange(_In):
    budget_days: float | None = Field(default=None, gt=0)
    cost_per_visit_days: float | None = Field(default=None, gt=0)
    daily_cap: int | None = Field(default=None, ge=1, le=20)
    ends_on: date | None = None


class MyVisit(BaseModel):
    """One line of a consultant's agenda (compact: what a phone needs between visits)."""

    id: uuid.UUID
    campaign_id: uuid.UUID
    site_id: str
    name: str | None = None
    commune: str
    naf: str
    band: str | None = None
    lon: float | None = None
    lat: float | None = None
    day: date | None = None
    order: int
    status: str
    outcome: str | None = None
    v: int = Field(description="version: changes whenever the visit changes")


class MyVisitsPage(BaseModel):
    items: list[MyVisit]
    next_cursor: str | None = None


class OutcomeIn(_In):
    outcome: VisitOutcome
    reason: str | None = Field(default=None, max_length=1000)
    visited_on: date | None = Field(default=None, description="default: today")

    @model_validator(mode="after")
    def _reason_when_needed(self) -> OutcomeIn:
        if self.outcome in ("declined", "unreachable") and not (self.reason or "").strip():
            raise ValueError(f"reason is required when the outcome is {self.outcome}")
        return self


class OutcomeOut(BaseModel):
    visit_id: uuid.UUID
    status: str
    outcome: str
    recorded: bool = Field(description="false when the same outcome was already recorded")


class ProjectIn(_In):
    lead_id: uuid.UUID | None = Field(
        default=None, description="stable id from the client; keeps resubmissions one project"
    )
    kind: ProjectKind
    description: str = Field(min_length=3, max_length=2000)
    capex_eur: int | None = Field(default=None, ge=0, le=10_000_000_000)
    jobs_to_create: int = Field(ge=0, le=100_000)
    horizon_months: int | None = Field(default=None, ge=0, le=240)
    maturity: Maturity
    known_to_public_actors: bool
    obstacles: list[Obstacle] = Field(default_factory=list)
    funding_need_eur: int | None = Field(default=None, ge=0, le=10_000_000_000)
    consent_to_share: bool = False


class RedFlagIn(_In):
    kind: RedFlagKind
    horizon_months: int | None = Field(default=None, ge=0, le=120)
    jobs_at_risk: int | None = Field(default=None, ge=0)


class SurveyIn(_In):
    questionnaire_version: Literal["2026-1"] = Field(
        description="the questionnaire this answers; see GET /questionnaire"
    )
    headcount: int | None = Field(default=None, ge=0, le=1_000_000)
    projects: list[ProjectIn] = Field(default_factory=list, max_length=50)
    red_flags: list[RedFlagIn] = Field(default_factory=list, max_length=3)
    contact_name: str | None = Field(default=None, max_length=200, description="never published")
    contact_phone: str | None = Field(default=None, max_length=40, description="never published")
    comments: str | None = Field(default=None, max_length=4000, description="never published")


class SurveyOut(BaseModel):
    survey_id: uuid.UUID
    visit_id: uuid.UUID
    revision: int
    projects: int
    lead_ids: list[uuid.UUID]
    red_flags: int


class SyncItem(_In):
    client_id: uuid.UUID = Field(description="generated on the phone; makes a retry harmless")
    type: Literal["outcome", "survey"]
    visit_id: uuid.UUID
    recorded_at: AwareDatetime = Field(description="when the consultant recorded it, offline")
    outcome: OutcomeIn | None = None
    survey: SurveyIn | None = None

    @model_validator(mode="after")
    def _body_matches_type(self) -> SyncItem:
        if self.type == "outcome" and self.outcome is None:
            raise ValueError("an outcome item needs its `outcome`")
        if self.type == "survey" and self.survey is None:
            raise ValueError("a survey item needs its `survey`")
        return self


class SyncIn(_In):
    items: list[SyncItem] = Field(min_length=1, max_length=200)


class SyncResult(BaseModel):
    client_id: uuid.UUID
    status: Literal["accepted", "duplicate", "conflict", "rejected", "not_found"]
    http_status: int
    detail: str | None = None
    result: dict[str, object] | None = None


class SyncOut(BaseModel):
    accepted: int
    duplicates: int
    conflicts: int
    rejected: int
    results: list[SyncResult]


class Breakdown(BaseModel):
    key: str
    targets: int
    planned: int
    visited: int
    reached: int
    projects: int


class Progress(BaseModel):
    campaign_id: uuid.UUID
    targets: int
    planned: int
    uncovered: int
    visited: int
    reached: int
    reached_rate: float | None
    days_used: float
    budget_days: float
    projects: int
    projects_hidden: int
    hidden_share: float | None
    jobs_in_projects: int
    red_flags: int
    per_consultant: list[Breakdown]
    per_commune: list[Breakdown]
