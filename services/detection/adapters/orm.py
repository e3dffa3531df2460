"""The detection service's tables: the write model (projects, their leads, reports and
timeline), the projections it needs (sites, shocks), and the ledger's own tables — a
projection of the projects topic that can be dropped and rebuilt. Shocks are one table,
for the commands and the ledger alike: a shock is announced once and never changes, so
a rebuild keeps them."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db import utc_column
from shared.messaging.tables import utcnow


def _ts(nullable: bool = False) -> sa.Column[datetime]:
    return utc_column(nullable=nullable)


def _json(nullable: bool = False) -> sa.Column[object]:
    return sa.Column(sa.JSON(), nullable=nullable)


class DetectionSiteRow(SQLModel, table=True):
    """Sites by firm and territory: decides whether a project's firm is local."""

    __tablename__ = "detection_sites"
    __table_args__ = (sa.Index("ix_detection_sites_siren", "siren"),)

    site_id: str = Field(primary_key=True, max_length=14)
    siren: str = Field(max_length=9)
    name: str | None = None
    naf_code: str = Field(max_length=6)
    commune_insee: str = Field(max_length=5)
    territory_ids: list[str] = Field(default_factory=list, sa_column=_json())
    status: str = Field(max_length=20)
    version: int


class ShockRow(SQLModel, table=True):
    """A closure shock, from its announcement: the one territory it belongs to
    (`ClosureAnnounced.primary_territory_id`) is where its projects are declared and
    where its ledger counts them."""

    __tablename__ = "shocks"

    shock_id: uuid.UUID = Field(primary_key=True)
    site_id: str = Field(max_length=14)
    territory_id: str = Field(max_length=20)
    announced_on: date
    jobs_lost: int


class ProjectRow(SQLModel, table=True):
    __tablename__ = "projects"
    __table_args__ = (
        sa.Index("ix_projects_territory_stage", "territory_id", "stage"),
        sa.Index("ix_projects_siren", "siren"),
    )

    id: uuid.UUID = Field(primary_key=True)
    version: int
    territory_id: str = Field(max_length=20)
    shock_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = Field(default=None, index=True)
    site_id: str | None = Field(default=None, max_length=14)
    siren: str | None = Field(default=None, max_length=9)
    firm_name: str | None = None
    naf_code: str | None = Field(default=None, max_length=6)
    origin: str = Field(max_length=20)
    kind: str = Field(max_length=40)
    description: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    stage: str = Field(max_length=20)
    hidden: bool
    jobs_planned: int
    jobs_created: int
    jobs_complete: bool
    capex_eur: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
    funding_need_eur: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
    maturity: str | None = Field(default=None, max_length=20)
    obstacles: list[str] = Field(default_factory=list, sa_column=_json())
    consent_to_share: bool
    land_needs_ha: float | None = None
    detected_on: date
    abandoned_reason: str | None = None
    possible_duplicate_of: uuid.UUID | None = Field(default=None, index=True)
    duplicate_reason: str | None = None
    merged_into: uuid.UUID | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ProjectLeadRow(SQLModel, table=True):
    """A lead id reported by a survey → the project it became (resubmissions find it)."""

    __tablename__ = "project_leads"

    lead_id: uuid.UUID = Field(primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="projects.id", index=True)


class ProjectReportRow(SQLModel, table=True):
    """Who said what, and when: every report merged into a project, forever."""

    __tablename__ = "project_reports"

    id: int | None = Field(default=None, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="projects.id", index=True)
    source: str = Field(max_length=20)
    reference: str
    reported_at: datetime = Field(sa_column=_ts())
    figures: dict[str, object] = Field(default_factory=dict, sa_column=_json())


class ProjectHistoryRow(SQLModel, table=True):
    """The project's timeline: one row per event it recorded."""

    __tablename__ = "project_history"

    project_id: uuid.UUID = Field(primary_key=True, foreign_key="projects.id")
    version: int = Field(primary_key=True)
    event_type: str = Field(max_length=200)
    occurred_at: datetime = Field(sa_column=_ts())
    stage: str = Field(max_length=20)
    detail: dict[str, object] = Field(default_factory=dict, sa_column=_json())


# --- the ledger: a projection of the projects topic -----------------------------------


class LedgerProjectRow(SQLModel, table=True):
    __tablename__ = "ledger_projects"
    __table_args__ = (sa.Index("ix_ledger_projects_territory", "territory_id"),)

    project_id: uuid.UUID = Field(primary_key=True)
    version: int
    territory_id: str = Field(max_length=20)
    origin: str = Field(max_length=20)
    stage: str = Field(max_length=20)
    jobs_planned: int
    jobs_created: int
    detected_on: date
    qualified_on: date | None = None
    funded_on: date | None = None
    under_review: bool = Field(default=False, description="flagged as a possible duplicate")
    merged_into: uuid.UUID | None = Field(default=None, description="counted there, not here")


class LedgerJobEntryRow(SQLModel, table=True):
    __tablename__ = "ledger_job_entries"

    project_id: uuid.UUID = Field(primary_key=True)
    version: int = Field(primary_key=True)
    created_on: date
    jobs_added: int


# The ledger's figures, kept as events arrive (`LedgerProjection`): what each shock's
# counted projects add up to, so that a read of the ledger reads a few rows instead of
# every project of the territory. Derived from the two tables above, in the same
# transactions; a rebuild recomputes them from those tables.


class LedgerShockTotalsRow(SQLModel, table=True):
    """Per shock and origin, the counters of `domain.ledger.TOTAL_COUNTERS`."""

    __tablename__ = "ledger_shock_totals"

    shock_id: uuid.UUID = Field(primary_key=True)
    origin: str = Field(primary_key=True, max_length=20)
    projects: int = 0
    detected: int = 0
    qualified: int = 0
    funded: int = 0
    created: int = 0
    abandoned: int = 0
    jobs_abandoned: int = 0
    projects_under_review: int = 0
    jobs_under_review: int = 0


class LedgerShockMonthRow(SQLModel, table=True):
    """Per shock, origin and month (its first day), the jobs each bucket adds that month
    and `items`, how many dated contributions land in it (`domain.ledger.MONTH_COUNTERS`)."""

    __tablename__ = "ledger_shock_months"

    shock_id: uuid.UUID = Field(primary_key=True)
    origin: str = Field(primary_key=True, max_length=20)
    month: date = Field(primary_key=True)
    detected: int = 0
    qualified: int = 0
    funded: int = 0
    created: int = 0
    items: int = 0
