"""The funding service's tables: the catalogue (schemes, calls, selection rounds), its
projections of projects and sites, matches and plans, applications and decisions."""

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


class SchemeRow(SQLModel, table=True):
    """A funding scheme; `data` holds the validated scheme as JSON (the domain's shape)."""

    __tablename__ = "schemes"

    id: str = Field(primary_key=True, max_length=120)
    name: str
    funders: list[str] = Field(default_factory=list, sa_column=_json())
    scale: str = Field(max_length=20)
    generated: bool = False
    data: dict[str, object] = Field(default_factory=dict, sa_column=_json())
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class CallRow(SQLModel, table=True):
    __tablename__ = "calls"

    id: str = Field(primary_key=True, max_length=120)
    scheme_id: str = Field(foreign_key="schemes.id", max_length=120)
    name: str
    data: dict[str, object] = Field(default_factory=dict, sa_column=_json())


class SelectionRoundRow(SQLModel, table=True):
    """A selection round's result, e.g. "18 of 50 selected", with per-territory counts."""

    __tablename__ = "selection_rounds"

    call_id: str = Field(primary_key=True, foreign_key="calls.id", max_length=120)
    round: str = Field(primary_key=True, max_length=120)
    decided_on: date
    applications: int
    selected: int
    per_territory: dict[str, int] = Field(default_factory=dict, sa_column=_json())


class FundingSiteRow(SQLModel, table=True):
    __tablename__ = "funding_sites"

    site_id: str = Field(primary_key=True, max_length=14)
    siren: str = Field(max_length=9)
    commune_insee: str = Field(max_length=5)
    headcount_band: str | None = Field(default=None, max_length=2)
    company_category: str | None = Field(default=None, max_length=3)
    version: int


class FundingProjectRow(SQLModel, table=True):
    """The funding service's projection of a project (from the projects topic)."""

    __tablename__ = "funding_projects"

    project_id: uuid.UUID = Field(primary_key=True)
    version: int
    territory_id: str = Field(max_length=20)
    site_id: str | None = Field(default=None, max_length=14)
    siren: str | None = Field(default=None, max_length=9)
    firm_name: str | None = None
    naf_code: str | None = Field(default=None, max_length=6)
    kind: str = Field(max_length=40)
    stage: str = Field(max_length=20)
    origin: str = Field(max_length=20)
    jobs_planned: int
    capex_eur: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
    funding_need_eur: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
    consent_to_share: bool
    plan: dict[str, object] | None = Field(default=None, sa_column=_json(nullable=True))


class MatchRow(SQLModel, table=True):
    __tablename__ = "matches"

    project_id: uuid.UUID = Field(primary_key=True)
    scheme_id: str = Field(primary_key=True, max_length=120)
    eligible: bool
    rank: int | None = None
    score: float
    planned_amount_eur: int = 0
    criteria: list[dict[str, object]] = Field(default_factory=list, sa_column=_json())
    published: bool = False
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ApplicationRow(SQLModel, table=True):
    __tablename__ = "applications"

    id: uuid.UUID = Field(primary_key=True)
    project_id: uuid.UUID = Field(index=True)
    scheme_id: str = Field(max_length=120)
    funder: str
    status: str = Field(max_length=20)  # submitted, granted, refused
    amount_requested_eur: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    amount_granted_eur: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
    amount_paid_eur: int = Field(default=0, sa_column=sa.Column(sa.BigInteger(), nullable=False))
    decided_on: date | None = None
    refusal_reason: str | None = None
    submitted_at: datetime = Field(sa_column=_ts())
    filed_on: date | None = None  # recorded after the fact: the day it was filed


class FunderFeedEntryRow(SQLModel, table=True):
    """An event of the funder topic, kept for the funders' HTTP feed (the outbox row is
    purged once sent). Appended in the transaction that writes the event's outbox row;
    `seq` is the feed's order, the order of the commits (`SqlFunderFeed.append`)."""

    __tablename__ = "funder_feed_entries"
    # AUTOINCREMENT: a sequence number is never given twice, even after the last is gone.
    __table_args__ = (
        sa.Index("ix_funder_feed_region_seq", "region", "seq"),
        {"sqlite_autoincrement": True},
    )

    seq: int | None = Field(default=None, primary_key=True)
    event_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid(), nullable=False, unique=True))
    event_type: str = Field(max_length=200)
    source: str = Field(max_length=200)
    subject: str = Field(max_length=200)
    time: datetime = Field(sa_column=_ts())
    project_id: uuid.UUID
    #: the project's region (INSEE code) when the event was recorded; None: no region known
    region: str | None = Field(default=None, max_length=3)
    payload: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))


class FunderWebhookRow(SQLModel, table=True):
    """A funder's webhook subscription and its delivery cursor (`domain.webhooks`)."""

    __tablename__ = "funder_webhooks"

    id: uuid.UUID = Field(primary_key=True)
    owner: str = Field(max_length=200, index=True)
    url: str = Field(max_length=2000)
    #: the HMAC key, kept to sign (`whsec_…`): shown once, to its creator
    secret: str = Field(max_length=100)
    #: None: every region (an admin's subscription)
    regions: list[str] | None = Field(default=None, sa_column=_json(nullable=True))
    created_at: datetime = Field(sa_column=_ts())
    delivered_seq: int = 0
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_error: str | None = Field(default=None, max_length=500)
