"""The funders' HTTP feed: every event of the funder topic, kept with its sequence number
and its project's region (the outbox rows are purged once sent). The feed starts empty:
events published before this revision are on the Kafka topic only.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "funder_feed_entries",
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("region", sa.String(length=3), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("event_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_funder_feed_region_seq", "funder_feed_entries", ["region", "seq"])


def downgrade() -> None:
    op.drop_index("ix_funder_feed_region_seq", table_name="funder_feed_entries")
    op.drop_table("funder_feed_entries")
