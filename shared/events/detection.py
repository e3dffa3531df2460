"""Events owned by the detection service: the life of each investment project.

Every event carries the project's whole public state (event-carried state), so a
projection — the job-compensation ledger, a funder's view — is rebuilt from this topic
alone. No personal data; `consent_to_share` says whether funders may see the project.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from shared.events.campaigns import Obstacle, ProjectKind
from shared.events.envelope import EventPayload
from shared.events.site_registry import NAF_PATTERN

Origin = Literal["endogenous", "exogenous"]
Stage = Literal[
    "detected", "qualified", "in_funding", "funded", "launched", "jobs_created", "abandoned"
]
Source = Literal["survey", "crisis_cell", "funding"]


class ProjectState(EventPayload):
    key_field: ClassVar[str] = "project_id"
    identity: ClassVar[tuple[str, ...]] = ("project_id", "version")

    project_id: uuid.UUID
    version: int = Field(ge=1, description="+1 per change of the project")
    territory_id: str
    shock_id: uuid.UUID | None = Field(description="the closure shock whose rebond found it")
    campaign_id: uuid.UUID | None = None
    site_id: str | None = Field(default=None, description="SIRET, for a firm of the territory")
    siren: str | None = Field(default=None, pattern=r"^[0-9]{9}$")
    firm_name: str | None = Field(default=None, description="company name, never a person")
    naf_code: str | None = Field(default=None, pattern=NAF_PATTERN)
    origin: Origin
    kind: ProjectKind
    stage: Stage
    hidden: bool = Field(description="unknown to public actors when detected")
    jobs_planned: int = Field(ge=0)
    jobs_created: int = Field(ge=0, description="actual jobs created so far")
    capex_eur: int | None = Field(default=None, ge=0)
    funding_need_eur: int | None = Field(default=None, ge=0)
    maturity: str | None = None
    obstacles: list[Obstacle] = Field(default_factory=list)
    consent_to_share: bool
    detected_on: date
    occurred_at: AwareDatetime = Field(description="when this change happened")
    possible_duplicate_of: uuid.UUID | None = Field(
        default=None,
        description=(
            "another project this one looks like (same firm and kind in the territory),"
            " under review by the crisis cell: merged into it, or the flag dismissed."
            " Added in a compatible release: readers that ignore it count both projects."
        ),
    )


class ProjectDetected(ProjectState):
    event_type: ClassVar[str] = "rebond.detection.project_detected.v1"

    source: Source


class ProjectUpdated(ProjectState):
    """Figures changed (a resubmitted survey, a look-alike merged in, an analyst's edit),
    or the duplicate flag was raised or dismissed (`changed_fields` says which)."""

    event_type: ClassVar[str] = "rebond.detection.project_updated.v1"

    source: Source
    changed_fields: list[str]


class ProjectQualified(ProjectState):
    event_type: ClassVar[str] = "rebond.detection.project_qualified.v1"


class ProjectStageChanged(ProjectState):
    event_type: ClassVar[str] = "rebond.detection.project_stage_changed.v1"

    previous_stage: Stage


class JobsCreated(ProjectState):
    event_type: ClassVar[str] = "rebond.detection.jobs_created.v1"

    jobs_added: int = Field(description="jobs created since the previous report")
    created_on: date
    complete: bool = Field(description="the project created all the jobs it will")


class ProjectAbandoned(ProjectState):
    event_type: ClassVar[str] = "rebond.detection.project_abandoned.v1"

    previous_stage: Stage
    reason: str = Field(max_length=500, description="why, in business terms")


class ProjectMerged(ProjectState):
    """The crisis cell decided this project is the same as another: it lives on in
    `merged_into` (which received its figures, leads and reports in a `ProjectUpdated`)
    and counts no more, anywhere."""

    event_type: ClassVar[str] = "rebond.detection.project_merged.v1"

    merged_into: uuid.UUID
