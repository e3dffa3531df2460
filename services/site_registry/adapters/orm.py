"""The registry's tables (SQLModel). Domain objects never leave as rows: the repositories
translate, so the domain stays free of persistence concerns."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db import utc_column
from shared.messaging.tables import utcnow


class TerritoryRow(SQLModel, table=True):
    __tablename__ = "territories"

    id: str = Field(primary_key=True, max_length=20, description="e.g. ti-3205")
    name: str
    programme: str = Field(default="2023-2027", max_length=20)


class TerritoryGroupementRow(SQLModel, table=True):
    """An EPCI (or, in a few territories, a commune) that makes up a territory."""

    __tablename__ = "territory_groupements"

    territory_id: str = Field(primary_key=True, foreign_key="territories.id", max_length=20)
    siren: str = Field(primary_key=True, max_length=9)
    name: str
    kind: str = Field(max_length=20, description="CA, CC, CU, METRO, commune, unresolved…")


class CommuneRow(SQLModel, table=True):
    __tablename__ = "communes"

    insee: str = Field(primary_key=True, max_length=5)
    name: str
    epci_siren: str | None = Field(default=None, max_length=9, index=True)
    population: int | None = None
    postal_codes: str = Field(default="", description="'|'-separated")
    lon: float | None = None
    lat: float | None = None


class TerritoryCommuneRow(SQLModel, table=True):
    __tablename__ = "territory_communes"

    territory_id: str = Field(primary_key=True, foreign_key="territories.id", max_length=20)
    commune_insee: str = Field(primary_key=True, max_length=5, index=True)


class SiteRow(SQLModel, table=True):
    __tablename__ = "sites"
    __table_args__ = (
        sa.Index("ix_sites_commune_status", "commune_insee", "status"),
        sa.Index("ix_sites_naf", "naf_code"),
    )

    siret: str = Field(primary_key=True, max_length=14)
    siren: str = Field(max_length=9, index=True)
    name: str | None = None
    naf_code: str = Field(max_length=6)
    naf_section: str = Field(max_length=1)
    headcount_band: str | None = Field(default=None, max_length=2)
    commune_insee: str = Field(max_length=5)
    lon: float | None = None
    lat: float | None = None
    status: str = Field(max_length=20)
    source: str = Field(max_length=20)
    territory_ids: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON()))
    closed_on: date | None = None
    # The firm's facts, from Sirene's legal units (StockUniteLegale); see FirmFacts.
    firm_known: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean(), nullable=False, server_default=sa.false())
    )
    firm_name: str | None = None
    firm_name_is_person: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean(), nullable=False, server_default=sa.false())
    )
    legal_category: str | None = Field(default=None, max_length=4)
    company_category: str | None = Field(default=None, max_length=3)
    company_category_year: int | None = None
    version: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class ClosureShockRow(SQLModel, table=True):
    __tablename__ = "closure_shocks"
    __table_args__ = (
        # At most one open shock per site, enforced by the database too: two concurrent
        # declarations cannot both pass the domain check and both commit.
        sa.Index(
            "ux_closure_shocks_open_site",
            "site_id",
            unique=True,
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    site_id: str = Field(foreign_key="sites.siret", max_length=14, index=True)
    territory_ids: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON()))
    announced_on: date
    jobs_lost: int
    planned_closure_on: date | None = None
    note: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    status: str = Field(max_length=20)
    declared_at: datetime = Field(sa_column=utc_column())
    declared_by: str = Field(max_length=200)
