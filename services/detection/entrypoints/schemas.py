"""The detection API's request (`XIn`) and response (`XOut`) models."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from services.detection.domain.ledger import Jobs, Ledger, Split, Totals
from services.detection.domain.model import Figures, Project
from services.detection.service_layer.commands import ExogenousProject
from shared.events.campaigns import Maturity, ProjectKind
from shared.http import MAX_EUR, Day


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ExogenousIn(_In):
    territory_id: str = Field(examples=["ti-3205"])
    shock_id: uuid.UUID | None = Field(default=None, description="the shock it compensates")
    firm_name: str = Field(min_length=2, max_length=200, examples=["Blackstar"])
    siren: str | None = Field(default=None, pattern=r"^[0-9]{9}$")
    naf_code: str | None = Field(default=None, pattern=r"^[0-9]{2}\.[0-9]{2}[A-Z]$")
    kind: ProjectKind = "new_site"
    description: str = Field(min_length=3, max_length=2000)
    jobs_planned: int = Field(ge=0, le=100_000)
    capex_eur: int | None = Field(default=None, ge=0, le=MAX_EUR)
    funding_need_eur: int | None = Field(default=None, ge=0, le=MAX_EUR)
    land_needs_ha: float | None = Field(default=None, ge=0, le=10_000)
    maturity: Maturity | None = None
    known_to_public_actors: bool = True
    consent_to_share: bool = False

    def command(self) -> ExogenousProject:
        return ExogenousProject(
            territory_id=self.territory_id,
            firm_name=self.firm_name,
            kind=self.kind,
            figures=Figures(
                description=self.description,
                jobs_planned=self.jobs_planned,
                capex_eur=self.capex_eur,
                funding_need_eur=self.funding_need_eur,
                maturity=self.maturity,
                land_needs_ha=self.land_needs_ha,
                consent_to_share=self.consent_to_share,
            ),
            shock_id=self.shock_id,
            siren=self.siren,
            naf_code=self.naf_code,
            known_to_public_actors=self.known_to_public_actors,
        )


class QualifyIn(_In):
    jobs_planned: int | None = Field(default=None, ge=0, le=100_000)
    capex_eur: int | None = Field(default=None, ge=0, le=MAX_EUR)


class StageIn(_In):
    stage: Literal["qualified", "in_funding", "funded", "launched"]
    reason: str | None = Field(default=None, max_length=500)


class JobsIn(_In):
    jobs_created_total: int = Field(ge=0, le=100_000, description="total so far, not added")
    created_on: Day
    complete: bool = False


class AbandonIn(_In):
    reason: str = Field(min_length=3, max_length=500)


class DismissDuplicateIn(_In):
    note: str | None = Field(default=None, max_length=500, description="why they differ")


class MergeIn(_In):
    into: uuid.UUID | None = Field(
        default=None,
        description="the project that remains; default: the one this project is flagged as"
        " a possible duplicate of",
    )


class ProjectOut(BaseModel):
    id: uuid.UUID
    version: int
    territory_id: str
    shock_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    site_id: str | None
    siren: str | None
    firm_name: str | None
    naf_code: str | None
    origin: str
    kind: str
    description: str
    stage: str
    hidden: bool
    jobs_planned: int
    jobs_created: int
    jobs_complete: bool
    capex_eur: int | None
    funding_need_eur: int | None
    maturity: str | None
    obstacles: list[str]
    consent_to_share: bool
    land_needs_ha: float | None
    detected_on: date
    abandoned_reason: str | None
    possible_duplicate_of: uuid.UUID | None = Field(
        default=None, description="under review: this project may be that one, reported twice"
    )
    duplicate_reason: str | None = Field(default=None, description="why it looks the same")
    merged_into: uuid.UUID | None = Field(
        default=None, description="merged by the crisis cell: counted in that project"
    )
    priority: float
    priority_reasons: list[str]

    @classmethod
    def of(cls, project: Project) -> ProjectOut:
        figures, priority = project.figures, project.priority()
        return cls(
            id=project.id,
            version=project.version,
            territory_id=project.territory_id,
            shock_id=project.shock_id,
            campaign_id=project.campaign_id,
            site_id=project.site_id,
            siren=project.siren,
            firm_name=project.firm_name,
            naf_code=project.naf_code,
            origin=project.origin,
            kind=project.kind,
            description=figures.description,
            stage=project.stage.value,
            hidden=project.hidden,
            jobs_planned=figures.jobs_planned,
            jobs_created=project.jobs_created,
            jobs_complete=project.jobs_complete,
            capex_eur=figures.capex_eur,
            funding_need_eur=figures.funding_need_eur,
            maturity=figures.maturity,
            obstacles=list(figures.obstacles),
            consent_to_share=figures.consent_to_share,
            land_needs_ha=figures.land_needs_ha,
            detected_on=project.detected_on,
            abandoned_reason=project.abandoned_reason,
            possible_duplicate_of=project.possible_duplicate_of,
            duplicate_reason=project.duplicate_reason,
            merged_into=project.merged_into,
            priority=priority.score,
            priority_reasons=list(priority.reasons),
        )


class ProjectPage(BaseModel):
    items: list[ProjectOut]
    next_cursor: str | None


class StatsOut(BaseModel):
    projects: int = Field(description="live projects: not abandoned, not merged")
    abandoned: int
    hidden: int = Field(description="live projects unknown to public actors when detected")
    hidden_share: float | None = Field(description="hidden / projects; None without projects")
    jobs_planned: int
    jobs_created: int
    under_review: int = Field(description="live look-alikes waiting for the cell's decision")
    jobs_under_review: int
    by_stage: dict[str, int]
    by_origin: dict[str, int]
    by_kind: dict[str, int]


class ReportItemOut(BaseModel):
    """A report merged into the project: who said what."""

    at: datetime
    kind: Literal["report"] = "report"
    source: str
    reference: str
    detail: dict[str, JsonValue] = Field(description="the figures or decision it gave")


class EventItemOut(BaseModel):
    """An event the project recorded."""

    at: datetime
    kind: Literal["event"] = "event"
    event_type: str
    version: int
    stage: str
    detail: dict[str, JsonValue]


TimelineItem = Annotated[ReportItemOut | EventItemOut, Field(discriminator="kind")]


class ShockOut(BaseModel):
    shock_id: uuid.UUID
    site_id: str
    territory_id: str = Field(description="the one territory whose ledger counts the shock")
    announced_on: date
    jobs_lost: int


class MonthOut(BaseModel):
    month: str = Field(examples=["2021-03"])
    endogenous: Jobs
    exogenous: Jobs
    total: Jobs


class LedgerOut(BaseModel):
    """A shock's job-compensation ledger (rules: `services/detection/domain/ledger.py`)."""

    shock_id: uuid.UUID
    territory_id: str
    announced_on: date
    jobs_lost: int
    endogenous: Totals
    exogenous: Totals
    total: Totals
    compensation_rate: float | None = Field(description="jobs created / jobs lost")
    split: Split | None = Field(description="each origin's share of the jobs created")
    series: list[MonthOut] = Field(description="cumulative jobs, month by month")

    @classmethod
    def of(cls, ledger: Ledger) -> LedgerOut:
        shock = ledger.shock
        return cls(
            shock_id=shock.shock_id,
            territory_id=shock.territory_id,
            announced_on=shock.announced_on,
            jobs_lost=shock.jobs_lost,
            endogenous=ledger.endogenous,
            exogenous=ledger.exogenous,
            total=ledger.total,
            compensation_rate=ledger.compensation_rate,
            split=ledger.split,
            series=[
                MonthOut(
                    month=str(p.month),
                    endogenous=p.endogenous,
                    exogenous=p.exogenous,
                    total=p.total,
                )
                for p in ledger.series
            ],
        )
