"""What funding knows of other services' entities, and what it keeps of matching them.

`FundingProject` and `FundingSite` are projections (of detection's projects and the
registry's sites), kept by version; `ProjectMatch` is one scheme's standing for one
project as funders were last told of it. Pure Python.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from shared.events.campaigns import ProjectKind
from shared.events.funding import CriterionResult

#: The funding projection's stage of a project merged into another: matched no more,
#: its proposals withdrawn; the project it was merged into carries on.
MERGED = "merged"

#: Stages at which a project is matched: qualified or later (figures checked by an
#: analyst first) and not abandoned nor merged.
MATCHABLE = frozenset({"qualified", "in_funding", "funded", "launched"})


@dataclass(frozen=True, kw_only=True)
class FundingProject:
    project_id: uuid.UUID
    version: int
    territory_id: str
    site_id: str | None
    siren: str | None
    firm_name: str | None
    naf_code: str | None
    kind: ProjectKind
    stage: str
    origin: str
    jobs_planned: int
    capex_eur: int | None
    funding_need_eur: int | None
    consent_to_share: bool

    @property
    def matchable(self) -> bool:
        return self.stage in MATCHABLE


@dataclass(frozen=True, kw_only=True)
class FundingSite:
    site_id: str
    siren: str
    commune_insee: str
    headcount_band: str | None
    #: INSEE's categorieEntreprise of the site's firm (PME, ETI, GE), when the registry has it
    company_category: str | None = None
    version: int


@dataclass(kw_only=True)
class ProjectMatch:
    """A scheme the project matches (or matched: `eligible` False once it no longer does,
    kept so that funders who were told hear of the withdrawal)."""

    project_id: uuid.UUID
    scheme_id: str
    eligible: bool
    rank: int | None
    score: float
    planned_amount_eur: int
    criteria: tuple[CriterionResult, ...]
    published: bool = False  # funders were told of it (MatchProposed)


def region_of(territory_id: str) -> str | None:
    """ANCT ids carry the region: `ti-3205` is in region 32 (Hauts-de-France)."""
    code = territory_id.removeprefix("ti-")
    return code[:2] if len(code) >= 4 and code[:2].isdigit() else None
