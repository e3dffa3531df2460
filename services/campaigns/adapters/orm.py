"""The campaigns service's tables. Rows never leave the adapters: repositories translate."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db import utc_column
from shared.messaging.tables import utcnow


def _ts(nullable: bool = False) -> sa.Column[datetime]:
    return utc_column(nullable=nullable)


class CampaignSiteRow(SQLModel, table=True):
    """The service's own projection of the registry's sites (from site events only)."""

    __tablename__ = "campaign_sites"

    site_id: str = Field(primary_key=True, max_length=14)
    siren: str = Field(max_length=9)
    name: str | None = None
    naf_code: str = Field(max_length=6)
    naf_section: str = Field(max_length=1)
    headcount_band: str | None = Field(default=None, max_length=2)
    commune_insee: str = Field(max_length=5)
    territory_ids: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON()))
    lon: float | None = None
    lat: float | None = None
    status: str = Field(max_length=20)
    version: int


class CampaignSiteTerritoryRow(SQLModel, table=True):
    """Site ↔ territory, to find a territory's sites without scanning JSON."""

    __tablename__ = "campaign_site_territories"

    territory_id: str = Field(primary_key=True, max_length=20)
    # Indexed on its own too: a site's territory rows are replaced by site (the key
    # starts with the territory).
    site_id: str = Field(primary_key=True, max_length=14, index=True)


class CampaignRow(SQLModel, table=True):
    __tablename__ = "campaigns"

    id: uuid.UUID = Field(primary_key=True)
    shock_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid(), nullable=False, unique=True))
    territory_id: str = Field(max_length=20, index=True)
    closing_site_id: str = Field(max_length=14)
    closing_naf_code: str = Field(max_length=6)
    status: str = Field(max_length=20)
    budget_days: float
    cost_per_visit_days: float
    daily_cap: int
    starts_on: date
    ends_on: date
    roster: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON()))
    plan_version: int
    launched_at: datetime = Field(sa_column=_ts())
    closed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class TargetRow(SQLModel, table=True):
    __tablename__ = "campaign_targets"

    campaign_id: uuid.UUID = Field(primary_key=True, foreign_key="campaigns.id")
    site_id: str = Field(primary_key=True, max_length=14)
    siren: str = Field(max_length=9)
    naf_code: str = Field(max_length=6)
    headcount_band: str | None = Field(default=None, max_length=2)
    commune_insee: str = Field(max_length=5)
    lon: float | None = None
    lat: float | None = None
    active: bool
    manual: bool
    priority_score: float
    priority_reasons: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON()))
    uncovered_reason: str | None = None


class VisitRow(SQLModel, table=True):
    __tablename__ = "visits"
    __table_args__ = (sa.Index("ix_visits_consultant_day", "consultant_id", "scheduled_on"),)

    id: uuid.UUID = Field(primary_key=True)
    campaign_id: uuid.UUID = Field(foreign_key="campaigns.id", index=True)
    site_id: str = Field(max_length=14)
    consultant_id: str = Field(max_length=200)
    scheduled_on: date | None = None
    order: int = Field(sa_column=sa.Column("day_order", sa.Integer(), nullable=False))
    plan_version: int
    status: str = Field(max_length=20)
    outcome: str | None = Field(default=None, max_length=20)
    outcome_reason: str | None = None
    visited_on: date | None = None
    version: int
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class SurveyRow(SQLModel, table=True):
    """Every revision of every survey is kept: who said what, and when."""

    __tablename__ = "surveys"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "site_id", "revision"),)

    id: uuid.UUID = Field(primary_key=True)
    campaign_id: uuid.UUID = Field(foreign_key="campaigns.id", index=True)
    visit_id: uuid.UUID
    site_id: str = Field(max_length=14)
    consultant_id: str = Field(max_length=200)
    revision: int
    questionnaire_version: str = Field(max_length=20)
    headcount: int | None = None
    projects: list[dict[str, object]] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    red_flags: list[dict[str, object]] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    contact_name: str | None = None
    contact_phone: str | None = None
    comments: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    submitted_at: datetime = Field(sa_column=_ts())
