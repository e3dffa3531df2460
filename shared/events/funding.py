"""Events owned by the funding service — the contract detection follows now, before the
funding service exists: a project's applications and funders' decisions.

Keyed by project, so one project's decisions stay in order.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar

from pydantic import Field

from shared.events.envelope import EventPayload


class FundingDecision(EventPayload):
    key_field: ClassVar[str] = "project_id"

    project_id: uuid.UUID
    scheme_id: str = Field(description="the funding scheme (catalogue id)")
    funder: str = Field(description="the funding body, e.g. 'Région Hauts-de-France'")
    occurred_at: datetime


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
