"""Events owned by the funding service, on the funder-facing topic: matches of projects
to funding schemes, applications, and funders' decisions.

Regional funders read this topic, so it carries only projects whose firm consented to
share them, and no personal data. Detection reads the decisions to move a project's stage.
Keyed by project, so one project's matches and decisions stay in order.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from shared.events.campaigns import ProjectKind
from shared.events.envelope import EventModel, EventPayload

AidType = Literal[
    "grant", "loan", "recoverable_advance", "guarantee", "equity", "engineering_support", "other"
]
FirmSize = Literal["micro", "sme", "midcap", "large"]
#: where a firm's size comes from: INSEE's company category of the firm (categorieEntreprise,
#: from Sirene's legal units), else an estimate from its site's headcount band
FirmSizeSource = Literal["company_category", "headcount_band"]


class FundingDecision(EventPayload):
    key_field: ClassVar[str] = "project_id"
    identity: ClassVar[tuple[str, ...]] = ("application_id", "occurred_at")

    project_id: uuid.UUID
    scheme_id: str = Field(description="the funding scheme (catalogue id)")
    funder: str = Field(description="the funding body, e.g. 'Région Hauts-de-France'")
    occurred_at: AwareDatetime


class ApplicationSubmitted(FundingDecision):
    event_type: ClassVar[str] = "rebond.funding.application_submitted.v1"

    application_id: uuid.UUID
    amount_requested_eur: int = Field(ge=0)


class AwardGranted(FundingDecision):
    event_type: ClassVar[str] = "rebond.funding.award_granted.v1"

    application_id: uuid.UUID
    amount_eur: int = Field(gt=0)
    decided_on: date


class AwardRefused(FundingDecision):
    event_type: ClassVar[str] = "rebond.funding.award_refused.v1"

    application_id: uuid.UUID
    decided_on: date
    reason: str = Field(max_length=500)


class PaymentMade(FundingDecision):
    event_type: ClassVar[str] = "rebond.funding.payment_made.v1"

    application_id: uuid.UUID
    amount_eur: int = Field(gt=0)
    paid_on: date


class CriterionResult(EventModel):
    """One eligibility criterion of a scheme, evaluated for one project."""

    criterion: str = Field(description="perimeter, beneficiary, naf, kind, amount, dates…")
    status: Literal["pass", "fail", "unknown"]
    reason: str = Field(description="why, readably: why a scheme does not fit matters too")


class MatchState(EventPayload):
    key_field: ClassVar[str] = "project_id"
    identity: ClassVar[tuple[str, ...]] = ("project_id", "scheme_id", "occurred_at")

    project_id: uuid.UUID
    scheme_id: str
    scheme_name: str
    funders: list[str]
    aid_type: AidType
    rate_min_pct: float | None = Field(default=None, ge=0, le=100)
    rate_max_pct: float | None = Field(default=None, ge=0, le=100)
    territory_id: str
    firm_name: str | None = Field(description="company name, never a person")
    siren: str | None = Field(default=None, pattern=r"^[0-9]{9}$")
    firm_size: FirmSize | None
    firm_size_source: FirmSizeSource | None = Field(
        default=None,
        description="company_category: INSEE's category of the firm (PME, ETI, GE);"
        " headcount_band: estimated from the site's band; None when the size is unknown",
    )
    kind: ProjectKind
    jobs_planned: int = Field(ge=0)
    capex_eur: int | None = Field(default=None, ge=0)
    funding_need_eur: int | None = Field(default=None, ge=0)
    rank: int = Field(ge=1, description="1 = best match of this project")
    score: float
    planned_amount_eur: int = Field(ge=0, description="this scheme's share of the plan")
    criteria: list[CriterionResult]
    occurred_at: AwareDatetime


class MatchProposed(MatchState):
    event_type: ClassVar[str] = "rebond.funding.match_proposed.v1"


class MatchUpdated(MatchState):
    event_type: ClassVar[str] = "rebond.funding.match_updated.v1"

    still_eligible: bool = Field(description="false: the scheme no longer fits the project")
