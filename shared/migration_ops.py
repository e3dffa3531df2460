"""The DDL of the shared tables, as each service's migrations have created them.

Migrations are history: what a revision created must not change when a model changes
later, so these functions are frozen once a revision calls them — a change to a shared
table is a new function called from a new revision of every service. The models live in
`shared.messaging.tables` and `shared.idempotency`; the drift test checks that a database
migrated to head matches them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

BUSINESS_KEY_MAX = 300  # frozen copy: shared.messaging.tables.BUSINESS_KEY_MAX may move on


def create_idempotency_table(op: Any) -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def create_messaging_tables(op: Any) -> None:
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


def upgrade_messaging_tables_0002(op: Any) -> None:
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


def downgrade_messaging_tables_0002(op: Any) -> None:
    from alembic import op as alembic_op

    assert op is alembic_op
    alembic_op.drop_table("relay_leases")
    alembic_op.drop_index("ux_inbox_business_key", table_name="inbox_messages")
    with alembic_op.batch_alter_table("inbox_messages") as batch:
        batch.drop_column("business_key")


def drop_messaging_tables(op: Any) -> None:
    from alembic import op as alembic_op

    assert op is alembic_op
    alembic_op.drop_table("inbox_messages")
    alembic_op.drop_index("ix_outbox_unsent", table_name="outbox_events")
    alembic_op.drop_table("outbox_events")
