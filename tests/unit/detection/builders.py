"""Events and principals for the service-layer tests: made-up SIRENs and SIRETs, a
fixed clock. Each builder takes the fields a test cares about and fills in the rest."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from shared.auth import Principal, Role
from shared.clock import Clock
from shared.events import campaigns as cp
from shared.events import funding as fd
from shared.events import site_registry as sr
from shared.events.envelope import Envelope, EventPayload

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CLOCK = Clock.fixed(NOW)
TERRITORY = "ti-test-a"
NEIGHBOUR = "ti-test-b"  # a second territory the closing site's commune is also in
SIREN = "900000001"
PLANT_A, PLANT_B = "90000000100011", "90000000100029"  # two plants of one firm
CLOSING_SITE = "90000000200010"
SHOCK_ID = uuid.UUID("00000000-0000-4000-8000-00000000a900")
CAMPAIGN_ID = uuid.UUID("00000000-0000-4000-8000-00000000c001")
CELL = Principal(
    subject="cell-a", roles=frozenset({Role.CRISIS_CELL}), territories=frozenset({TERRITORY})
)
NEIGHBOUR_CELL = Principal(
    subject="cell-b", roles=frozenset({Role.CRISIS_CELL}), territories=frozenset({NEIGHBOUR})
)


def envelope(payload: EventPayload, source: str = "test") -> Envelope[Any]:
    return Envelope.new(payload, source=source, correlation_id=None, causation_id=None)


def site(
    site_id: str = PLANT_A,
    *,
    version: int = 1,
    territories: tuple[str, ...] = (TERRITORY,),
    name: str | None = "Rechapage du Nord",
    siren: str = SIREN,
    updated: bool = False,
) -> sr.SiteState:
    fields: dict[str, Any] = {
        "site_id": site_id,
        "siren": siren,
        "name": name,
        "naf_code": "22.11Z",
        "naf_section": "C",
        "commune_insee": "62119",
        "territory_ids": list(territories),
        "status": "active",
        "source": "generated",
        "version": version,
    }
    if updated:
        return sr.SiteUpdated(**fields, changed_fields=["name"])
    return sr.SiteRegistered(**fields)


def closure(
    *, territories: tuple[str, ...] = (TERRITORY, NEIGHBOUR), jobs_lost: int = 900
) -> sr.ClosureAnnounced:
    return sr.ClosureAnnounced(
        shock_id=SHOCK_ID,
        site_id=CLOSING_SITE,
        siren="900000002",
        site_name="Pneus du Nord",
        naf_code="22.11Z",
        commune_insee="62119",
        territory_ids=list(territories),
        announced_on=date(2026, 9, 16),
        planned_closure_on=None,
        jobs_lost=jobs_lost,
        declared_at=NOW,
        version=2,
    )


def lead(
    kind: str = "capacity_extension",
    jobs: int = 12,
    *,
    lead_id: uuid.UUID | None = None,
    known: bool = False,
) -> cp.ProjectLead:
    return cp.ProjectLead(
        lead_id=lead_id or uuid.uuid4(),
        kind=kind,  # type: ignore[arg-type]
        description=f"{kind}: doubling the retreading line",
        capex_eur=100_000 * jobs,
        jobs_to_create=jobs,
        maturity="ready",
        known_to_public_actors=known,
        obstacles=["land", "financing"],
        consent_to_share=True,
    )


def survey(
    leads: list[cp.ProjectLead],
    *,
    site_id: str = PLANT_A,
    revision: int = 1,
    survey_id: uuid.UUID | None = None,
    submitted_at: datetime = NOW,
) -> cp.SurveySubmitted:
    return cp.SurveySubmitted(
        survey_id=survey_id or uuid.uuid4(),
        campaign_id=CAMPAIGN_ID,
        shock_id=SHOCK_ID,
        territory_id=TERRITORY,
        visit_id=uuid.uuid4(),
        site_id=site_id,
        siren=SIREN,
        naf_code="22.11Z",
        commune_insee="62119",
        questionnaire_version="2026-1",
        headcount=30,
        projects=leads,
        red_flags=[],
        submitted_at=submitted_at,
        revision=revision,
    )


def decision(kind: type[fd.FundingDecision], project_id: uuid.UUID) -> fd.FundingDecision:
    common: dict[str, Any] = {
        "project_id": project_id,
        "scheme_id": "fonds-test",
        "funder": "Région Test",
        "occurred_at": NOW,
        "application_id": uuid.uuid4(),
    }
    extra: dict[type[fd.FundingDecision], dict[str, Any]] = {
        fd.ApplicationSubmitted: {"amount_requested_eur": 100_000},
        fd.AwardGranted: {"amount_eur": 100_000, "decided_on": NOW.date()},
        fd.AwardRefused: {"decided_on": NOW.date(), "reason": "out of the scheme's scope"},
        fd.PaymentMade: {"amount_eur": 50_000, "paid_on": NOW.date()},
    }
    return kind(**common, **extra[kind])
