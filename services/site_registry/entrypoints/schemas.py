"""The API's models: `XIn` for a request body, `XOut` for a response (never the table
models). The views build the read models; `of` builds one from a command's aggregate."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.site_registry.domain.model import Site, SiteSource
from services.site_registry.service_layer.commands import DeclareClosureShock, SiteInput
from shared.http import MAX_COUNT, Day

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    siret: str = Field(examples=["36120038900019"], description="14 digits, Luhn-checked")
    name: str | None = Field(default=None, max_length=200)
    naf_code: str = Field(examples=["22.11Z"], description="NAF rev. 2 sub-class")
    headcount_band: str | None = Field(default=None, examples=["41"])
    commune_insee: str = Field(examples=["62119"], min_length=5, max_length=5)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)

    def command(self) -> SiteInput:
        return SiteInput(
            siret=self.siret,
            naf_code=self.naf_code,
            commune_insee=self.commune_insee,
            source=SiteSource.MANUAL,
            name=self.name,
            headcount_band=self.headcount_band,
            lon=self.lon,
            lat=self.lat,
        )


class SiteOut(BaseModel):
    siret: str
    siren: str
    name: str | None = Field(
        description="the establishment's sign or usual name, else its firm's name (Sirene)"
    )
    name_is_person: bool = Field(
        description="`name` is a natural person's (a sole trader's, public in Sirene): shown"
        " here, never sent in an event"
    )
    firm_name: str | None = Field(description="the firm's name (Sirene's legal unit)")
    legal_category: str | None = Field(
        description="INSEE categorieJuridiqueUniteLegale (1000: entrepreneur individuel)"
    )
    company_category: str | None = Field(
        description="INSEE categorieEntreprise: PME (micro-entreprises included), ETI or GE"
    )
    company_category_year: int | None = Field(description="the year INSEE computed it for")
    naf_code: str
    naf_section: str
    headcount_band: str | None
    commune_insee: str
    territory_ids: list[str]
    lon: float | None
    lat: float | None
    status: str
    source: str
    closed_on: date | None
    version: int

    @classmethod
    def of(cls, site: Site) -> SiteOut:
        f, firm = site.facts, site.firm
        return cls(
            siret=site.siret,
            siren=f.siren,
            name=site.name,
            name_is_person=site.name_is_person,
            firm_name=firm.name if firm else None,
            legal_category=firm.legal_category if firm else None,
            company_category=firm.company_category if firm else None,
            company_category_year=firm.company_category_year if firm else None,
            naf_code=f.naf_code,
            naf_section=f.naf_section,
            headcount_band=f.headcount_band,
            commune_insee=f.commune_insee,
            territory_ids=list(site.territory_ids),
            lon=f.lon,
            lat=f.lat,
            status=site.status.value,
            source=f.source.value,
            closed_on=site.closed_on,
            version=site.version,
        )


class ClosureShockIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    site_id: str = Field(description="SIRET of the closing site", examples=["36120038900019"])
    announced_on: Day = Field(examples=["2020-09-16"])
    jobs_lost: int = Field(
        gt=0, le=MAX_COUNT, examples=[900], description="jobs lost, strictly positive"
    )
    planned_closure_on: Day | None = Field(default=None, examples=["2021-04-30"])
    note: str | None = Field(
        default=None, max_length=4000, description="internal note; never published in events"
    )

    def command(self) -> DeclareClosureShock:
        return DeclareClosureShock(
            site_id=self.site_id.replace(" ", ""),  # SIRETs are often written in groups
            announced_on=self.announced_on,
            jobs_lost=self.jobs_lost,
            planned_closure_on=self.planned_closure_on,
            note=self.note,
        )


class ClosureShockOut(BaseModel):
    """Built from a row (views) or from the domain's `ClosureShock` (the command's
    answer), whose attributes it shares; `declared_by` stays in the registry."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    site_id: str
    territory_ids: list[str]
    announced_on: date
    jobs_lost: int
    planned_closure_on: date | None
    note: str | None
    status: str
    declared_at: AwareDatetime


class SiteClosureIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    closed_on: Day | None = None


class CommuneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    insee: str
    name: str
    epci_siren: str | None
    population: int | None
    lon: float | None
    lat: float | None


class GroupementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    siren: str
    name: str
    kind: str


class TerritorySummaryOut(BaseModel):
    id: str
    name: str
    programme: str
    groupements: list[GroupementOut]
    commune_count: int = Field(
        description="its communes (COG 2026): EPCI and EPT members, single communes"
    )
    epci_count: int = Field(
        description="its intercommunalities: EPCI à fiscalité propre and Grand Paris EPT"
        " (a single-commune groupement is not counted)"
    )


class TerritoryDetailOut(TerritorySummaryOut):
    communes: list[CommuneOut]
    site_counts: dict[str, int]


class TerritoryRefOut(BaseModel):
    id: str
    name: str


class SiteCardOut(BaseModel):
    site: SiteOut
    naf_label: str | None
    headcount_label: str | None
    commune: CommuneOut | None
    territories: list[TerritoryRefOut]
    closure_shocks: list[ClosureShockOut]
