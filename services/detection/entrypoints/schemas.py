"""The detection API's request and response models."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.campaigns import Maturity, ProjectKind

#: An upper bound no real project reaches (a thousand billion euros): what the API
#: accepts, every consumer's columns hold.
MAX_EUR = 10**12


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class QualifyIn(_In):
    jobs_planned: int | None = Field(default=None, ge=0, le=100_000)
    capex_eur: int | None = Field(default=None, ge=0, le=MAX_EUR)


class StageIn(_In):
    stage: Literal["qualified", "in_funding", "funded", "launched"]
    reason: str | None = Field(default=None, max_length=500)


class JobsIn(_In):
    jobs_created_total: int = Field(ge=0, le=100_000, description="total so far, not added")
    created_on: date
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


class ProjectPage(BaseModel):
    items: list[ProjectOut]
    next_cursor: str | None
