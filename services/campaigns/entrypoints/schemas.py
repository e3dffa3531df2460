"""The campaigns API's request and response models. Consultants' payloads are compact:
short field lists, nulls omitted, dates as ISO strings."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.campaigns.domain.model import Campaign, Survey, SurveyAnswers
from services.campaigns.service_layer.commands import Terms
from shared.events.campaigns import (
    Maturity,
    Obstacle,
    ProjectKind,
    ProjectLead,
    RedFlagItem,
    RedFlagKind,
    VisitOutcome,
)
from shared.http import DAY_WINDOW, MAX_COUNT, Day, Instant

QUESTIONNAIRE_VERSION = "2026-1"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


#: A campaign's budget, in consultant-days: years of a whole team at most.
MAX_BUDGET_DAYS = 10_000
#: What one visit may cost, in consultant-days.
MAX_VISIT_DAYS = 30


class CampaignOut(BaseModel):
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


class PlanTargetOut(BaseModel):
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
    outcome: str | None = Field(
        default=None,
        description="a completed visit's outcome: reached, declined, unreachable or site_closed",
    )
    uncovered_reason: str | None = None
    lon: float | None = Field(default=None, description="WGS84, when the registry knows it")
    lat: float | None = None


class RedFlagOut(BaseModel):
    """A warning a surveyed firm gave (layoffs, relocation, closure…): the firm, never
    the person who said it."""

    site_id: str
    name: str | None = None
    commune_insee: str | None = None
    kind: str
    horizon_months: int | None = None
    jobs_at_risk: int | None = None
    reported_at: datetime
    visit_id: uuid.UUID


class PlanOut(BaseModel):
    campaign_id: uuid.UUID
    plan_version: int
    targets: list[PlanTargetOut]


class TargetsIn(_In):
    site_ids: list[str] = Field(min_length=1, max_length=500)


class RosterIn(_In):
    add: list[str] = Field(
        default_factory=list, max_length=200, description="consultant ids (token `sub`)"
    )
    remove: list[str] = Field(default_factory=list, max_length=200)


class TermsIn(_In):
    budget_days: float | None = Field(default=None, gt=0, le=MAX_BUDGET_DAYS)
    cost_per_visit_days: float | None = Field(default=None, gt=0, le=MAX_VISIT_DAYS)
    daily_cap: int | None = Field(default=None, ge=1, le=20)
    ends_on: Day | None = None

    def terms(self) -> Terms:
        return Terms(
            budget_days=self.budget_days,
            cost_per_visit_days=self.cost_per_visit_days,
            daily_cap=self.daily_cap,
            ends_on=self.ends_on,
        )


class CampaignChangeOut(BaseModel):
    """A campaign after a crisis cell's change."""

    campaign_id: uuid.UUID
    status: str
    plan_version: int
    planned: int | None = Field(description="visits of the new plan; null if not re-planned")
    uncovered: int | None = Field(description="targets the new plan leaves out; null likewise")
    roster: list[str]
    budget_days: float

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignChangeOut:
        plan = campaign.last_plan
        return cls(
            campaign_id=campaign.id,
            status=campaign.status.value,
            plan_version=campaign.plan_version,
            planned=len(plan.visits) if plan else None,
            uncovered=len(plan.uncovered) if plan else None,
            roster=campaign.roster,
            budget_days=campaign.budget_days,
        )


class MyVisitOut(BaseModel):
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


class MyVisitsOut(BaseModel):
    items: list[MyVisitOut]
    next_cursor: str | None = None


class OutcomeIn(_In):
    outcome: VisitOutcome
    reason: str | None = Field(default=None, max_length=1000)
    visited_on: Day | None = Field(default=None, description="default: today")

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
    jobs_at_risk: int | None = Field(default=None, ge=0, le=MAX_COUNT)


class SurveyIn(_In):
    questionnaire_version: Literal["2026-1"] = Field(
        description="the questionnaire this answers; see GET /questionnaire"
    )
    headcount: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    projects: list[ProjectIn] = Field(default_factory=list, max_length=50)
    red_flags: list[RedFlagIn] = Field(default_factory=list, max_length=3)
    contact_name: str | None = Field(default=None, max_length=200, description="never published")
    contact_phone: str | None = Field(default=None, max_length=40, description="never published")
    comments: str | None = Field(default=None, max_length=4000, description="never published")

    def answers(self, visit_id: uuid.UUID) -> SurveyAnswers:
        return SurveyAnswers(
            questionnaire_version=self.questionnaire_version,
            headcount=self.headcount,
            projects=[
                ProjectLead(
                    # Without a client id, the n-th project of a visit keeps one id across
                    # resubmissions: the same survey resent is the same projects.
                    lead_id=p.lead_id or uuid.uuid5(visit_id, f"lead-{n}"),
                    **p.model_dump(exclude={"lead_id"}),
                )
                for n, p in enumerate(self.projects)
            ],
            red_flags=[RedFlagItem(**f.model_dump()) for f in self.red_flags],
            contact_name=self.contact_name,
            contact_phone=self.contact_phone,
            comments=self.comments,
        )


class SurveyOut(BaseModel):
    survey_id: uuid.UUID
    visit_id: uuid.UUID
    revision: int
    projects: int
    lead_ids: list[uuid.UUID]
    red_flags: int

    @classmethod
    def of(cls, survey: Survey) -> SurveyOut:
        return cls(
            survey_id=survey.id,
            visit_id=survey.visit_id,
            revision=survey.revision,
            projects=len(survey.answers.projects),
            lead_ids=[p.lead_id for p in survey.answers.projects],
            red_flags=len(survey.answers.red_flags),
        )


class SyncItemIn(_In):
    client_id: uuid.UUID = Field(description="generated on the phone; makes a retry harmless")
    type: Literal["outcome", "survey"]
    visit_id: uuid.UUID
    recorded_at: Instant = Field(
        description=f"when the consultant recorded it, offline ({DAY_WINDOW})"
    )
    outcome: OutcomeIn | None = None
    survey: SurveyIn | None = None

    @model_validator(mode="after")
    def _body_matches_type(self) -> SyncItemIn:
        if self.type == "outcome" and self.outcome is None:
            raise ValueError("an outcome item needs its `outcome`")
        if self.type == "survey" and self.survey is None:
            raise ValueError("a survey item needs its `survey`")
        return self


class SyncIn(_In):
    items: list[SyncItemIn] = Field(min_length=1, max_length=200)


SyncStatus = Literal["accepted", "duplicate", "conflict", "rejected", "not_found"]


class SyncResultOut(BaseModel):
    client_id: uuid.UUID
    status: SyncStatus
    http_status: int
    detail: str | None = None
    result: dict[str, object] | None = None


class SyncOut(BaseModel):
    accepted: int
    duplicates: int
    conflicts: int
    rejected: int
    results: list[SyncResultOut]

    @classmethod
    def of(cls, results: list[SyncResultOut]) -> SyncOut:
        def count(*statuses: str) -> int:
            return sum(1 for r in results if r.status in statuses)

        return cls(
            accepted=count("accepted"),
            duplicates=count("duplicate"),
            conflicts=count("conflict"),
            rejected=count("rejected", "not_found"),
            results=results,
        )


class QuestionnaireOut(BaseModel):
    version: str
    json_schema: dict[str, object] = Field(
        alias="schema", description="the JSON Schema of a survey (`POST /visits/{id}/survey`)"
    )


class BreakdownOut(BaseModel):
    key: str
    targets: int
    planned: int
    visited: int
    reached: int
    projects: int


class ProgressOut(BaseModel):
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
    per_consultant: list[BreakdownOut]
    per_commune: list[BreakdownOut]
