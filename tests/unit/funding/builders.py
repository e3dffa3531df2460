"""What the funding service-layer tests are made of: a small catalogue, principals, the
matcher on a fixed clock, and the events of other services."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from services.funding.adapters.repository import CatalogueCache
from services.funding.domain.catalogue import Perimeter, Scheme
from services.funding.domain.plan import IntensityCaps
from services.funding.service_layer.matching import Matcher
from shared.auth import Principal, Role
from shared.clock import Clock
from shared.events import detection as dt
from shared.events import site_registry as sr
from shared.events.envelope import Envelope, EventPayload

NOW = datetime(2023, 6, 15, 9, 0, tzinfo=UTC)
REGION = "Région Hauts-de-France"
TERRITORY = "ti-3205"  # in region 32
SITE = "12345678900011"


def scheme(scheme_id: str, **changes: Any) -> Scheme:
    """A GENERATED scheme of region 32, open in 2023, for small firms' projects."""
    base = Scheme(
        id=scheme_id,
        name=f"GENERATED {scheme_id}",
        funders=(REGION,),
        perimeter=Perimeter("region", ("32",)),
        aid_type="grant",
        beneficiaries=frozenset({"micro", "sme"}),
        rate_min_pct=10.0,
        rate_max_pct=40.0,
        amount_max_eur=500_000,
        opens_on=date(2023, 1, 1),
        closes_on=date(2027, 12, 31),
        source="generated test data",
        generated=True,
    )
    return replace(base, **changes)


CATALOGUE = (
    scheme("hdf-a"),
    scheme("hdf-b", aid_type="loan", capex_max_eur=2_000_000),
    scheme("hdf-c", aid_type="guarantee"),
    scheme("ara-only", perimeter=Perimeter("region", ("84",))),
)


def matcher(*, propose_top: int = 10) -> Matcher:
    return Matcher(
        cache=CatalogueCache(),
        caps=IntensityCaps(),
        zones={},
        clock=Clock.fixed(NOW),
        propose_top=propose_top,
    )


def admin() -> Principal:
    return Principal(subject="admin", roles=frozenset({Role.ADMIN}))


def region_funder(org: str = REGION, regions: tuple[str, ...] = ("32",)) -> Principal:
    return Principal(
        subject=f"funder-{org}", roles=frozenset({Role.FUNDER}), regions=frozenset(regions), org=org
    )


def crisis_cell(territory: str = TERRITORY) -> Principal:
    return Principal(
        subject="cell", roles=frozenset({Role.CRISIS_CELL}), territories=frozenset({territory})
    )


def envelope(payload: EventPayload) -> Envelope[Any]:
    return Envelope.new(payload, source="test", correlation_id=None, causation_id=None)


def project_event(
    kind: type[dt.ProjectState] = dt.ProjectQualified,
    *,
    project_id: uuid.UUID,
    version: int = 2,
    stage: str = "qualified",
    **changes: Any,
) -> dt.ProjectState:
    fields: dict[str, Any] = {
        "project_id": project_id,
        "version": version,
        "territory_id": TERRITORY,
        "shock_id": None,
        "site_id": SITE,
        "siren": SITE[:9],
        "firm_name": "Plasturgie du Nord (generated)",
        "naf_code": "22.21Z",
        "origin": "endogenous",
        "kind": "modernisation_automation",
        "stage": stage,
        "hidden": False,
        "jobs_planned": 8,
        "jobs_created": 0,
        "capex_eur": 1_200_000,
        "funding_need_eur": 400_000,
        "consent_to_share": True,
        "detected_on": date(2023, 5, 2),
        "occurred_at": NOW,
    }
    extras: dict[type[dt.ProjectState], dict[str, Any]] = {
        dt.ProjectDetected: {"source": "survey"},
        dt.ProjectUpdated: {"source": "crisis_cell", "changed_fields": ["capex_eur"]},
        dt.ProjectStageChanged: {"previous_stage": "qualified"},
        dt.JobsCreated: {"jobs_added": 1, "created_on": date(2023, 6, 1), "complete": False},
        dt.ProjectAbandoned: {"previous_stage": "qualified", "reason": "the firm gave up"},
        dt.ProjectMerged: {"merged_into": uuid.UUID(int=1)},
    }
    return kind(**{**fields, **extras.get(kind, {}), **changes})


def site_event(
    kind: type[sr.SiteState] = sr.SiteRegistered, *, version: int = 1, **changes: Any
) -> sr.SiteState:
    fields: dict[str, Any] = {
        "site_id": SITE,
        "siren": SITE[:9],
        "name": "Plasturgie du Nord (generated)",
        "naf_code": "22.21Z",
        "naf_section": "C",
        "headcount_band": "12",  # 20 to 49 employees: an SME
        "commune_insee": "62193",
        "territory_ids": [TERRITORY],
        "status": "active",
        "source": "generated",
        "version": version,
    }
    if kind is sr.SiteUpdated:
        fields["changed_fields"] = ["headcount_band"]
    return kind(**{**fields, **changes})
