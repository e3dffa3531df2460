"""The company category of each site's firm (INSEE categorieEntreprise: PME, ETI, GE),
from the site events: the firm's size for aid intensity, instead of the estimate from
the site's headcount band.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("funding_sites") as batch:
        batch.add_column(sa.Column("company_category", sa.String(3), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("funding_sites") as batch:
        batch.drop_column("company_category")
