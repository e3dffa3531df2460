"""The two infrastructure tables every service database has: outbox and inbox.

They are created by each service's first Alembic migration (`create_messaging_tables`),
so that a service's own migrations own its whole schema.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


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
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )
    sent_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )


class InboxMessage(SQLModel, table=True):
    """A message a consumer has processed: its insert commits with the side effect, so a
    redelivered message finds its row and changes nothing."""

    __tablename__ = "inbox_messages"

    consumer: str = Field(primary_key=True, max_length=200)
    event_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid(), primary_key=True))
    event_type: str = Field(max_length=200)
    topic: str = Field(max_length=249)
    partition: int
    offset: int
    processed_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )


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


def drop_messaging_tables(op: object) -> None:
    from alembic import op as alembic_op

    assert op is alembic_op
    alembic_op.drop_table("inbox_messages")
    alembic_op.drop_index("ix_outbox_unsent", table_name="outbox_events")
    alembic_op.drop_table("outbox_events")
