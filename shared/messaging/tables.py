"""The infrastructure tables every service database has: outbox, inbox, relay lease.

These are the models the code reads and writes. The DDL that creates them is history,
kept in `shared.migration_ops` and called from each service's migrations (so that a
service's own migrations own its whole schema); the drift test
(`tests/integration/test_migration_drift.py`) checks that both agree.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db import utc_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxEvent(SQLModel, table=True):
    """An event waiting for (or done with) publication, written in the same transaction
    as the state change it describes. `id` gives the publication order."""

    __tablename__ = "outbox_events"
    # The relay only ever scans unsent rows: a partial index keeps that scan small while
    # sent rows wait for the retention purge.
    __table_args__ = (
        sa.Index(
            "ix_outbox_unsent",
            "id",
            postgresql_where=sa.text("sent_at IS NULL"),
            sqlite_where=sa.text("sent_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid(), nullable=False, unique=True))
    topic: str = Field(max_length=249, description="logical topic name from the catalogue")
    key: str = Field(max_length=200)
    event_type: str = Field(max_length=200)
    headers: list[list[str]] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    payload: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    sent_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


BUSINESS_KEY_MAX = 300


class InboxMessage(SQLModel, table=True):
    """A message a consumer has processed: its insert commits with the side effect, so a
    redelivered message finds its row and changes nothing.

    Two keys make a message a duplicate: its event id (a redelivery), and its business
    key (`EventPayload.business_key`: the same survey revision, the same project version,
    re-sent by hand or by a producer bug under a new event id)."""

    __tablename__ = "inbox_messages"
    __table_args__ = (sa.Index("ux_inbox_business_key", "consumer", "business_key", unique=True),)

    consumer: str = Field(primary_key=True, max_length=200)
    event_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid(), primary_key=True))
    business_key: str | None = Field(default=None, max_length=BUSINESS_KEY_MAX)
    event_type: str = Field(max_length=200)
    topic: str = Field(max_length=249)
    partition: int
    offset: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    processed_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class RelayLease(SQLModel, table=True):
    """Who may publish this database's outbox: one row per relay name.

    The holder renews `expires_at` (seconds since the epoch, by the database's own clock,
    so replicas with skewed clocks agree) before every batch; a standby takes the lease
    only once it has expired, incrementing `token` (the fencing token)."""

    __tablename__ = "relay_leases"

    name: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    token: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    expires_at: float
