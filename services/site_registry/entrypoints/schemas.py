"""The API's request and response models (never the table models)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class SiteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    siret: str = Field(examples=["36120038900019"], description="14 digits, Luhn-checked")
    name: str | None = Field(default=None, max_length=200)
    naf_code: str = Field(examples=["22.11Z"], description="NAF rev. 2 sub-class")
    headcount_band: str | None = Field(default=None, examples=["41"])
    commune_insee: str = Field(examples=["62119"], min_length=5, max_length=5)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)


class SitePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    siret: str
    siren: str
    name: str | None
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


class ClosureShockCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(description="SIRET of the closing site", examples=["36120038900019"])
    announced_on: date = Field(examples=["2020-09-16"])
    jobs_lost: int = Field(gt=0, examples=[900], description="jobs lost, strictly positive")
    planned_closure_on: date | None = Field(default=None, examples=["2021-04-30"])
    note: str | None = Field(
        default=None, max_length=4000, description="internal note; never published in events"
    )


class ClosureShockPublic(BaseModel):
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


class SiteClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    closed_on: date | None = None


class CommunePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    insee: str
    name: str
    epci_siren: str | None
    population: int | None
    lon: float | None
    lat: float | None


class GroupementPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    siren: str
    name: str
    kind: str


class TerritorySummary(BaseModel):
    id: str
    name: str
    programme: str
    groupements: list[GroupementPublic]
    commune_count: int = Field(description="communes known to the registry (dept 62 only)")


class TerritoryDetail(TerritorySummary):
    communes: list[CommunePublic]
    site_counts: dict[str, int]


class TerritoryRef(BaseModel):
    id: str
    name: str


class SiteCard(BaseModel):
    site: SitePublic
    naf_label: str | None
    headcount_label: str | None
    commune: CommunePublic | None
    territories: list[TerritoryRef]
    closure_shocks: list[ClosureShockPublic]
