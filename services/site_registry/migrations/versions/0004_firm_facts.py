"""The firm's facts on each site, from Sirene's legal units (StockUniteLegale): its name
(flagged when it is a sole trader's, which no event carries), its legal category and
its company category (PME, ETI, GE) with the year INSEE computed it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(
            sa.Column("firm_known", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("firm_name", sa.String(), nullable=True))
        batch.add_column(
            sa.Column(
                "firm_name_is_person", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch.add_column(sa.Column("legal_category", sa.String(4), nullable=True))
        batch.add_column(sa.Column("company_category", sa.String(3), nullable=True))
        batch.add_column(sa.Column("company_category_year", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("company_category_year")
        batch.drop_column("company_category")
        batch.drop_column("legal_category")
        batch.drop_column("firm_name_is_person")
        batch.drop_column("firm_name")
        batch.drop_column("firm_known")
