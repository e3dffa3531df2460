"""Look-alikes are flagged, not merged: a project's possible duplicate (with the reason)
and what it was merged into; the ledger counts jobs under review and skips merged
projects.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("possible_duplicate_of", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("duplicate_reason", sa.String(), nullable=True))
        batch.add_column(sa.Column("merged_into", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_projects_possible_duplicate_of", "projects", ["possible_duplicate_of"], unique=False
    )
    with op.batch_alter_table("ledger_projects") as batch:
        batch.add_column(
            sa.Column("under_review", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("merged_into", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_projects") as batch:
        batch.drop_column("merged_into")
        batch.drop_column("under_review")
    op.drop_index("ix_projects_possible_duplicate_of", table_name="projects")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("merged_into")
        batch.drop_column("duplicate_reason")
        batch.drop_column("possible_duplicate_of")
