"""An index on `campaign_site_territories.site_id`: a site's territory rows are replaced
by site id, and the primary key starts with the territory (each replacement scanned the
table).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_campaign_site_territories_site_id", "campaign_site_territories", ["site_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_site_territories_site_id", table_name="campaign_site_territories")
