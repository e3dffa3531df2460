"""One example payload per event type: documentation for outside consumers (exported with
the schemas) and fixtures for the contract tests, which validate each against its schema.
Every value here is made up for illustration."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from shared.events import campaigns as cp
from shared.events import detection as dt
from shared.events import funding as fd
from shared.events import site_registry as sr
from shared.events.envelope import EventPayload

SIRET = "12345678900011"
CAMPAIGN = uuid.UUID("0b7e5a8c-3c1d-4c1e-9a57-1f6c2f0d9e11")
SHOCK = uuid.UUID("6f1c1e0e-9a55-4c8e-9d2a-2b8f3c4d5e6f")
VISIT = uuid.UUID("9d2c4b1a-7e6f-4a3b-8c2d-1e0f9a8b7c6d")
SURVEY = uuid.UUID("4a3b2c1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d")
LEAD = uuid.UUID("1f2e3d4c-5b6a-4789-8a0b-c1d2e3f4a5b6")
WHEN = datetime(2025, 2, 1, 9, 30, tzinfo=UTC)

_SITE: dict[str, Any] = {
    "site_id": SIRET,
    "siren": SIRET[:9],
    "name": "Fonderie du Nord",
    "naf_code": "24.51Z",
    "naf_section": "C",
    "headcount_band": "32",
    "commune_insee": "62119",
    "territory_ids": ["ti-3205"],
    "lon": 2.64,
    "lat": 50.53,
    "status": "active",
    "source": "sirene",
    "legal_category": "5710",
    "company_category": "PME",
    "version": 1,
}
PROJECT = uuid.UUID("7c6b5a49-3827-4165-9f0e-d1c2b3a49586")
APPLICATION = uuid.UUID("2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901")
_PROJECT: dict[str, Any] = {
    "project_id": PROJECT,
    "version": 1,
    "territory_id": "ti-3205",
    "shock_id": SHOCK,
    "campaign_id": CAMPAIGN,
    "site_id": SIRET,
    "siren": SIRET[:9],
    "firm_name": "Fonderie du Nord",
    "naf_code": "24.51Z",
    "origin": "endogenous",
    "kind": "decarbonation_energy",
    "stage": "detected",
    "hidden": True,
    "jobs_planned": 6,
    "jobs_created": 0,
    "capex_eur": 1_200_000,
    "funding_need_eur": 400_000,
    "maturity": "study",
    "obstacles": ["financing"],
    "consent_to_share": True,
    "detected_on": date(2025, 2, 3),
    "occurred_at": WHEN,
}
_FUNDING: dict[str, Any] = {
    "project_id": PROJECT,
    "scheme_id": "ademe-ecoconception-investissement",
    "funder": "ADEME",
    "occurred_at": WHEN,
    "application_id": APPLICATION,
}
_MATCH: dict[str, Any] = {
    "project_id": PROJECT,
    "scheme_id": "ademe-ecoconception-investissement",
    "scheme_name": "Investissements d'écoconception",
    "funders": ["ADEME"],
    "aid_type": "grant",
    "rate_min_pct": 15.0,
    "rate_max_pct": 55.0,
    "territory_id": "ti-3205",
    "firm_name": "Fonderie du Nord",
    "siren": SIRET[:9],
    "firm_size": "sme",
    "firm_size_source": "company_category",
    "kind": "decarbonation_energy",
    "jobs_planned": 6,
    "capex_eur": 1_200_000,
    "funding_need_eur": 400_000,
    "rank": 1,
    "score": 87.5,
    "planned_amount_eur": 300_000,
    "criteria": [
        fd.CriterionResult(
            criterion="perimeter", status="pass", reason="national scheme: ti-3205 is in France"
        ),
        fd.CriterionResult(
            criterion="beneficiary", status="pass", reason="SMEs are eligible; the firm is one"
        ),
    ],
    "occurred_at": WHEN,
}
_FLAG = cp.RedFlagItem(kind="layoffs", horizon_months=12, jobs_at_risk=20)

EXAMPLES: dict[type[EventPayload], EventPayload] = {
    sr.SiteRegistered: sr.SiteRegistered(**_SITE),
    sr.SiteUpdated: sr.SiteUpdated(**{**_SITE, "version": 2}, changed_fields=["name"]),
    sr.SiteClosed: sr.SiteClosed(
        site_id=SIRET,
        siren=SIRET[:9],
        territory_ids=["ti-3205"],
        closed_on=date(2025, 3, 31),
        version=3,
    ),
    sr.ClosureAnnounced: sr.ClosureAnnounced(
        shock_id=SHOCK,
        site_id=SIRET,
        siren=SIRET[:9],
        site_name=None,
        naf_code="24.51Z",
        commune_insee="62119",
        territory_ids=["ti-3205"],
        announced_on=date(2025, 2, 1),
        planned_closure_on=None,
        jobs_lost=240,
        declared_at=WHEN,
        version=2,
    ),
    cp.CampaignLaunched: cp.CampaignLaunched(
        campaign_id=CAMPAIGN,
        shock_id=SHOCK,
        territory_id="ti-3205",
        closing_site_id=SIRET,
        closing_naf_code="24.51Z",
        targets=164,
        budget_days=150.0,
        cost_per_visit_days=0.75,
        starts_on=date(2025, 2, 3),
        ends_on=date(2025, 7, 31),
        launched_at=WHEN,
    ),
    cp.CampaignReplanned: cp.CampaignReplanned(
        campaign_id=CAMPAIGN,
        plan_version=2,
        reason="consultant added",
        targets=164,
        planned=160,
        uncovered=4,
        budget_days=150.0,
        days_planned=120.0,
        consultants=4,
    ),
    cp.CampaignClosed: cp.CampaignClosed(
        campaign_id=CAMPAIGN, closed_at=WHEN, visits_completed=150, visits_cancelled=14
    ),
    cp.VisitsScheduled: cp.VisitsScheduled(
        campaign_id=CAMPAIGN,
        plan_version=1,
        visits=[
            cp.ScheduledVisitItem(
                visit_id=VISIT,
                site_id=SIRET,
                scheduled_on=date(2025, 2, 3),
            )
        ],
    ),
    cp.VisitCompleted: cp.VisitCompleted(
        campaign_id=CAMPAIGN,
        visit_id=VISIT,
        site_id=SIRET,
        outcome="reached",
        visited_on=date(2025, 2, 3),
    ),
    cp.SurveySubmitted: cp.SurveySubmitted(
        site_id=SIRET,
        survey_id=SURVEY,
        campaign_id=CAMPAIGN,
        shock_id=SHOCK,
        territory_id="ti-3205",
        visit_id=VISIT,
        siren=SIRET[:9],
        naf_code="24.51Z",
        commune_insee="62119",
        questionnaire_version="2025-01",
        headcount=32,
        projects=[
            cp.ProjectLead(
                lead_id=LEAD,
                kind="decarbonation_energy",
                description="Replace the gas furnace with an induction furnace",
                capex_eur=1_200_000,
                jobs_to_create=6,
                horizon_months=18,
                maturity="study",
                known_to_public_actors=False,
                obstacles=["financing", "energy_grid"],
                funding_need_eur=400_000,
                consent_to_share=True,
            )
        ],
        red_flags=[_FLAG],
        submitted_at=WHEN,
        revision=1,
    ),
    dt.ProjectDetected: dt.ProjectDetected(**_PROJECT, source="survey"),
    dt.ProjectUpdated: dt.ProjectUpdated(
        **{**_PROJECT, "version": 2, "jobs_planned": 8},
        source="survey",
        changed_fields=["jobs_planned"],
    ),
    dt.ProjectQualified: dt.ProjectQualified(**{**_PROJECT, "version": 3, "stage": "qualified"}),
    dt.ProjectStageChanged: dt.ProjectStageChanged(
        **{**_PROJECT, "version": 4, "stage": "funded"}, previous_stage="in_funding"
    ),
    dt.JobsCreated: dt.JobsCreated(
        **{**_PROJECT, "version": 5, "stage": "jobs_created", "jobs_created": 4},
        jobs_added=4,
        created_on=date(2026, 3, 1),
        complete=False,
    ),
    dt.ProjectAbandoned: dt.ProjectAbandoned(
        **{**_PROJECT, "version": 6, "stage": "abandoned"},
        previous_stage="qualified",
        reason="the group invested in another plant",
    ),
    dt.ProjectMerged: dt.ProjectMerged(
        **{
            **_PROJECT,
            "project_id": uuid.UUID("5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716"),
            "version": 2,
            "possible_duplicate_of": PROJECT,
        },
        merged_into=PROJECT,
    ),
    fd.MatchProposed: fd.MatchProposed(**_MATCH),
    fd.MatchUpdated: fd.MatchUpdated(**{**_MATCH, "rank": 2}, still_eligible=True),
    fd.ApplicationSubmitted: fd.ApplicationSubmitted(**_FUNDING, amount_requested_eur=400_000),
    fd.AwardGranted: fd.AwardGranted(**_FUNDING, amount_eur=300_000, decided_on=date(2025, 6, 1)),
    fd.AwardRefused: fd.AwardRefused(
        **_FUNDING, decided_on=date(2025, 6, 1), reason="outside the call's themes"
    ),
    fd.PaymentMade: fd.PaymentMade(**_FUNDING, amount_eur=150_000, paid_on=date(2025, 9, 1)),
    cp.RedFlagRaised: cp.RedFlagRaised(
        site_id=SIRET,
        campaign_id=CAMPAIGN,
        survey_id=SURVEY,
        territory_id="ti-3205",
        flag=_FLAG,
        raised_at=WHEN,
    ),
}
