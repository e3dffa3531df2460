"""The funding API's models: `XIn` for a request body, `XOut` for a response."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from services.funding.domain.applications import (
    Application,
    ApplicationStatus,
    Award,
    Payment,
    Refusal,
)
from services.funding.domain.catalogue import (
    Call,
    Perimeter,
    RoundResult,
    Scale,
    Scheme,
    SelectionRound,
)
from services.funding.domain.matching import Match
from services.funding.domain.webhooks import Webhook
from shared.events.campaigns import ProjectKind
from shared.events.funding import AidType, CriterionResult, FirmSize, FirmSizeSource
from shared.http import MAX_COUNT, MAX_EUR, Day


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


Eur = Annotated[int, Field(ge=0, le=MAX_EUR)]
# Only bounded for the parser: the catalogue's own check refuses a rate outside 0–100
# together with every other problem of the scheme, in one answer that lists them all.
Pct = Annotated[float, Field(ge=-1_000_000, le=1_000_000)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class PerimeterIn(_In):
    scale: Scale
    codes: list[str] = Field(default_factory=list, examples=[["32"]])


class SchemeIn(_In):
    id: str = Field(min_length=2, max_length=120, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str = Field(min_length=2, max_length=300)
    funders: list[str] = Field(min_length=1)
    perimeter: PerimeterIn
    aid_type: AidType
    beneficiaries: list[FirmSize] = Field(default_factory=list, description="empty: every size")
    naf_sections: list[str] = Field(default_factory=list)
    naf_prefixes: list[str] = Field(default_factory=list, examples=[["22", "25.62"]])
    kinds: list[ProjectKind] = Field(default_factory=list)
    themes: list[str] = Field(default_factory=list)
    rate_min_pct: Pct | None = None
    rate_max_pct: Pct | None = None
    amount_min_eur: Eur | None = None
    amount_max_eur: Eur | None = None
    capex_min_eur: Eur | None = None
    capex_max_eur: Eur | None = None
    opens_on: Day | None = None
    closes_on: Day | None = None
    source_url: str | None = None
    source: str = Field(default="", description="where the scheme's figures come from")
    generated: bool = Field(default=False, description="benchmark or example data")
    de_minimis: bool = False
    curated: str | None = Field(
        default=None, max_length=2000, description="what a human still has to verify"
    )
    # What `GET /schemes/{id}` answers besides, so that its answer can be sent back.
    version: int | None = Field(
        default=None, ge=0, le=MAX_COUNT, description="ignored: the catalogue counts versions"
    )

    def to_scheme(self) -> Scheme:
        return Scheme(
            id=self.id,
            name=self.name,
            funders=tuple(self.funders),
            perimeter=Perimeter(self.perimeter.scale, tuple(self.perimeter.codes)),
            aid_type=self.aid_type,
            beneficiaries=frozenset(self.beneficiaries),
            naf_sections=frozenset(self.naf_sections),
            naf_prefixes=tuple(self.naf_prefixes),
            kinds=frozenset(self.kinds),
            themes=frozenset(self.themes),
            rate_min_pct=self.rate_min_pct,
            rate_max_pct=self.rate_max_pct,
            amount_min_eur=self.amount_min_eur,
            amount_max_eur=self.amount_max_eur,
            capex_min_eur=self.capex_min_eur,
            capex_max_eur=self.capex_max_eur,
            opens_on=self.opens_on,
            closes_on=self.closes_on,
            source_url=self.source_url,
            source=self.source,
            generated=self.generated,
            de_minimis=self.de_minimis,
            curated=self.curated,
        )


class RoundIn(_In):
    name: str
    closes_on: Day | None = None
    envelope_eur: Eur | None = None
    quota: Count | None = None


class CallIn(_In):
    id: str = Field(min_length=2, max_length=120)
    scheme_id: str
    name: str
    rounds: list[RoundIn] = Field(min_length=1)
    source_url: str | None = None
    source: str = ""

    def to_call(self, call_id: str) -> Call:
        """The call at `call_id` (the path's id: the body's is not checked against it)."""
        return Call(
            id=call_id,
            scheme_id=self.scheme_id,
            name=self.name,
            rounds=tuple(SelectionRound(**r.model_dump()) for r in self.rounds),
            source_url=self.source_url,
            source=self.source,
        )


class RoundResultIn(_In):
    round: str
    decided_on: Day
    applications: Count = Field(examples=[50])
    selected: Count = Field(examples=[18])
    per_territory: dict[str, Count] = Field(default_factory=dict, examples=[{"ti-3205": 18}])

    def to_result(self, call_id: str) -> RoundResult:
        return RoundResult(call_id=call_id, **self.model_dump())


class ApplicationIn(_In):
    project_id: uuid.UUID
    scheme_id: str
    amount_requested_eur: int = Field(gt=0, le=MAX_EUR)
    filed_on: Day | None = Field(
        default=None,
        description="recorded after the fact: the day it was filed (not after today); the"
        " scheme's criteria are checked as on that day, so a closed call's applications can"
        " be entered. Default: filed now, against the project's current matches",
    )


class AwardIn(_In):
    amount_eur: int = Field(gt=0, le=MAX_EUR)
    decided_on: Day

    def decision(self) -> Award:
        return Award(self.amount_eur, self.decided_on)


class RefusalIn(_In):
    reason: str = Field(min_length=3, max_length=500)
    decided_on: Day

    def decision(self) -> Refusal:
        return Refusal(self.reason, self.decided_on)


class PaymentIn(_In):
    amount_eur: int = Field(gt=0, le=MAX_EUR)
    paid_on: Day

    def decision(self) -> Payment:
        return Payment(self.amount_eur, self.paid_on)


DecisionIn = AwardIn | RefusalIn | PaymentIn


# --- responses ---------------------------------------------------------------------------


class PerimeterOut(BaseModel):
    scale: Scale
    codes: list[str]


class SchemeOut(BaseModel):
    """A scheme of the catalogue, as validated (sets as sorted lists, dates as ISO)."""

    id: str
    name: str
    funders: list[str]
    perimeter: PerimeterOut
    aid_type: AidType
    beneficiaries: list[FirmSize]
    naf_sections: list[str]
    naf_prefixes: list[str]
    kinds: list[ProjectKind]
    themes: list[str]
    rate_min_pct: float | None
    rate_max_pct: float | None
    amount_min_eur: int | None
    amount_max_eur: int | None
    capex_min_eur: int | None
    capex_max_eur: int | None
    opens_on: date | None
    closes_on: date | None
    source_url: str | None
    source: str
    generated: bool = Field(description="benchmark or example data, never a real scheme")
    de_minimis: bool
    curated: str | None = Field(description="what a human still has to verify, if anything")

    @classmethod
    def of(cls, scheme: Scheme) -> SchemeOut:
        return SchemeOut(
            id=scheme.id,
            name=scheme.name,
            funders=list(scheme.funders),
            perimeter=PerimeterOut(
                scale=scheme.perimeter.scale, codes=list(scheme.perimeter.codes)
            ),
            aid_type=scheme.aid_type,
            beneficiaries=sorted(scheme.beneficiaries),
            naf_sections=sorted(scheme.naf_sections),
            naf_prefixes=list(scheme.naf_prefixes),
            kinds=sorted(scheme.kinds),
            themes=sorted(scheme.themes),
            rate_min_pct=scheme.rate_min_pct,
            rate_max_pct=scheme.rate_max_pct,
            amount_min_eur=scheme.amount_min_eur,
            amount_max_eur=scheme.amount_max_eur,
            capex_min_eur=scheme.capex_min_eur,
            capex_max_eur=scheme.capex_max_eur,
            opens_on=scheme.opens_on,
            closes_on=scheme.closes_on,
            source_url=scheme.source_url,
            source=scheme.source,
            generated=scheme.generated,
            de_minimis=scheme.de_minimis,
            curated=scheme.curated,
        )


class StoredSchemeOut(SchemeOut):
    version: int = Field(description="+1 per change of the scheme")


class SavedSchemeOut(SchemeOut):
    changed: bool = Field(description="false when the scheme was already exactly so")

    @classmethod
    def saved(cls, scheme: Scheme, changed: bool) -> SavedSchemeOut:
        return cls(**dict(SchemeOut.of(scheme)), changed=changed)


class ImportOut(BaseModel):
    schemes: int = Field(description="schemes read from the document")
    changed: int = Field(description="of which new or changed")
    problems: list[str] = Field(description="records skipped, and why")


class RoundOut(BaseModel):
    name: str
    closes_on: date | None
    envelope_eur: int | None
    quota: int | None


class SelectionRoundOut(BaseModel):
    call_id: str
    round: str
    decided_on: date
    applications: int
    selected: int
    per_territory: dict[str, int]

    @classmethod
    def of(cls, result: RoundResult) -> Self:
        return cls(
            call_id=result.call_id,
            round=result.round,
            decided_on=result.decided_on,
            applications=result.applications,
            selected=result.selected,
            per_territory=dict(result.per_territory),
        )


class CallOut(BaseModel):
    id: str
    scheme_id: str
    name: str
    rounds: list[RoundOut]
    source_url: str | None
    source: str
    results: list[SelectionRoundOut] = Field(description="the rounds decided so far")


class SavedCallOut(BaseModel):
    id: str
    scheme_id: str
    rounds: int = Field(description="how many selection rounds the call has")

    @classmethod
    def of(cls, call: Call) -> Self:
        return cls(id=call.id, scheme_id=call.scheme_id, rounds=len(call.rounds))


class CriterionOut(BaseModel):
    criterion: str
    status: Literal["pass", "fail", "unknown"]
    reason: str

    @classmethod
    def all_of(cls, criteria: Sequence[CriterionResult]) -> list[Self]:
        return [cls(criterion=c.criterion, status=c.status, reason=c.reason) for c in criteria]


class EligibleOut(BaseModel):
    scheme_id: str
    scheme_name: str | None
    rank: int | None
    score: float = Field(description="share of the criteria passed, in %")
    planned_amount_eur: int = Field(description="its line in the financing plan")
    criteria: list[CriterionOut]


class RejectedOut(BaseModel):
    scheme_id: str
    scheme_name: str
    criteria: list[CriterionOut]

    @classmethod
    def of(cls, m: Match) -> Self:
        return cls(
            scheme_id=m.scheme.id,
            scheme_name=m.scheme.name,
            criteria=CriterionOut.all_of(m.criteria),
        )


class MatchesOut(BaseModel):
    project_id: uuid.UUID
    stage: str
    firm_size: FirmSize | None = Field(
        description="the firm's size: from its INSEE company category (PME, ETI, GE) when the"
        " registry has it, else estimated from the site's headcount band"
    )
    firm_size_source: FirmSizeSource | None = Field(
        description="which of the two `firm_size` comes from; None when the size is unknown"
    )
    region_code: str | None
    eligible: list[EligibleOut] = Field(
        description="best first: every eligible scheme, or the first `limit` when asked"
    )
    eligible_total: int = Field(description="how many schemes are eligible (stored matches)")
    rejected: list[RejectedOut] | None = Field(
        description="only with `rejected=true` (null otherwise: not computed): the schemes"
        " that do not fit today, with every criterion, near misses first, at most"
        " `rejected_limit` (200), only `funder`'s or `scheme_id` when given"
    )
    rejected_total: int = Field(
        description="how many schemes of the catalogue do not fit the project today"
    )


class PlanLineOut(BaseModel):
    scheme_id: str
    aid_type: AidType
    amount_eur: int
    rate_pct_of_base: float
    grant_equivalent_eur: int


class FinancingPlanOut(BaseModel):
    base_eur: int | None = Field(description="the eligible expense: the project's capex")
    need_eur: int | None
    cap_pct: float = Field(description="the aid-intensity cap, in % of the base")
    cap_eur: int
    lines: list[PlanLineOut]
    total_eur: int
    grant_equivalent_eur: int
    covered_pct_of_need: float
    remaining_need_eur: int | None
    notes: list[str]


class PlanOut(BaseModel):
    project_id: uuid.UUID
    stage: str
    plan: FinancingPlanOut | None = Field(description="none while the project is not matched")


class FunderMatchOut(BaseModel):
    scheme_id: str
    rank: int | None
    planned_amount_eur: int


class FunderProjectOut(BaseModel):
    project_id: uuid.UUID
    territory_id: str
    firm_name: str | None
    kind: ProjectKind
    stage: str
    jobs_planned: int
    capex_eur: int | None
    funding_need_eur: int | None
    matches: list[FunderMatchOut] = Field(description="the funder's own schemes, best first")


class ApplicationOut(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    scheme_id: str
    funder: str
    status: ApplicationStatus
    amount_requested_eur: int
    amount_granted_eur: int | None
    amount_paid_eur: int
    decided_on: date | None
    refusal_reason: str | None
    submitted_at: datetime
    filed_on: date | None = Field(description="when recorded after the fact: the day filed")

    @classmethod
    def of(cls, application: Application) -> Self:
        return cls(
            id=application.id,
            project_id=application.project_id,
            scheme_id=application.scheme_id,
            funder=application.funder,
            status=application.status,
            amount_requested_eur=application.amount_requested_eur,
            amount_granted_eur=application.amount_granted_eur,
            amount_paid_eur=application.amount_paid_eur,
            decided_on=application.decided_on,
            refusal_reason=application.refusal_reason,
            filed_on=application.filed_on,
            submitted_at=application.submitted_at,
        )


#: the event types of the funder topic, hence of its HTTP feed
FunderEventType = Literal[
    "rebond.funding.match_proposed.v1",
    "rebond.funding.match_updated.v1",
    "rebond.funding.application_submitted.v1",
    "rebond.funding.award_granted.v1",
    "rebond.funding.award_refused.v1",
    "rebond.funding.payment_made.v1",
]


class CloudEventOut(BaseModel):
    """An event of the funder topic as a CloudEvent 1.0 in structured JSON mode: the Kafka
    message's `ce_*` headers as attributes, its value as `data`."""

    specversion: Literal["1.0"]
    id: uuid.UUID = Field(
        description="the event id, the same as on the Kafka topic: deduplicate on it"
    )
    source: str = Field(description="the producing service (funding)")
    type: FunderEventType = Field(description="the event type; AsyncAPI names its data schema")
    time: datetime = Field(description="when the event happened (RFC 3339, with offset)")
    subject: str = Field(description="the project id (the Kafka key)")
    datacontenttype: Literal["application/json"]
    feedseq: int = Field(
        ge=1, description="the feed's sequence number: resume after it (`after`, Last-Event-ID)"
    )
    data: dict[str, object] = Field(
        description="the payload, valid against the event type's schema in /asyncapi.json"
    )


class WebhookIn(_In):
    url: str = Field(
        min_length=8,
        max_length=2000,
        description="http(s) URL the events are POSTed to; loopback and private addresses"
        " only in development and test",
        examples=["https://funding.region.example/rebond/webhook"],
    )


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    regions: list[str] | None = Field(description="the regions delivered; null: all (admin)")
    created_at: datetime
    delivered_seq: int = Field(description="the feed's last sequence number delivered")
    attempts: int = Field(description="failed attempts at the next event (0: up to date)")
    next_attempt_at: datetime | None
    last_error: str | None = Field(description="why the last attempt failed, if it did")

    @classmethod
    def of(cls, webhook: Webhook) -> Self:
        return cls(
            id=webhook.id,
            url=webhook.url,
            regions=None if webhook.regions is None else sorted(webhook.regions),
            created_at=webhook.created_at,
            delivered_seq=webhook.delivered_seq,
            attempts=webhook.attempts,
            next_attempt_at=webhook.next_attempt_at,
            last_error=webhook.last_error,
        )


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(
        description="the HMAC-SHA256 key of the signatures (`whsec_<base64>`): shown only"
        " in this answer, keep it"
    )

    @classmethod
    def created(cls, webhook: Webhook) -> Self:
        return cls(**WebhookOut.of(webhook).model_dump(), secret=webhook.secret)
