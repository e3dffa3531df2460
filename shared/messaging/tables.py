"""The two infrastructure tables every service database has: outbox and inbox.

They are created by each service's first Alembic migration (`create_messaging_tables`),
so that a service's own migrations own its whole schema.
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
    offset: int
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


def create_messaging_tables(op: object) -> None:
    """Called from each service's initial migration (`op` is alembic.op)."""
    from alembic import op as alembic_op

    assert op is alembic_op
    alembic_op.create_table(
        "outbox_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    # The relay only ever scans unsent rows: a partial index keeps that scan small while
    # sent rows wait for the retention purge.
    alembic_op.create_index(
        "ix_outbox_unsent",
        "outbox_events",
        ["id"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    alembic_op.create_table(
        "inbox_messages",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )


def upgrade_messaging_tables_0002(op: object) -> None:
    """Inbox business keys and the relay lease (each service's migration 0002)."""
    from alembic import op as alembic_op

    assert op is alembic_op
    with alembic_op.batch_alter_table("inbox_messages") as batch:
        batch.add_column(sa.Column("business_key", sa.String(BUSINESS_KEY_MAX), nullable=True))
    # NULLs are distinct in a unique index on both backends: events without a business
    # key are deduplicated by their id alone.
    alembic_op.create_index(
        "ux_inbox_business_key", "inbox_messages", ["consumer", "business_key"], unique=True
    )
    alembic_op.create_table(
        "relay_leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )


def downgrade_messaging_tables_0002(op: object) -> None:
    from alembic import op as alembic_op

    assert op is alembic_op
    alembic_op.drop_table("relay_leases")
    alembic_op.drop_index("ux_inbox_business_key", table_name="inbox_messages")
    with alembic_op.batch_alter_table("inbox_messages") as batch:
        batch.drop_column("business_key")


def drop_messaging_tables(op: object) -> None:
    from alembic import op as alembic_op

    assert op is alembic_op
    alembic_op.drop_table("inbox_messages")
    alembic_op.drop_index("ix_outbox_unsent", table_name="outbox_events")
    alembic_op.drop_table("outbox_events")
