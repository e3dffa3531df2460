"""Initial schema: reference data, sites, closure shocks, outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "territories",
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("programme", sa.String(20), nullable=False),
    )
    op.create_table(
        "territory_groupements",
        sa.Column("territory_id", sa.String(20), sa.ForeignKey("territories.id"), primary_key=True),
        sa.Column("siren", sa.String(9), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
    )
    op.create_table(
        "communes",
        sa.Column("insee", sa.String(5), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("epci_siren", sa.String(9), nullable=True, index=True),
        sa.Column("population", sa.Integer(), nullable=True),
        sa.Column("postal_codes", sa.String(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
    )
    op.create_table(
        "territory_communes",
        sa.Column("territory_id", sa.String(20), sa.ForeignKey("territories.id"), primary_key=True),
        sa.Column("commune_insee", sa.String(5), primary_key=True, index=True),
    )
    op.create_table(
        "sites",
        sa.Column("siret", sa.String(14), primary_key=True),
        sa.Column("siren", sa.String(9), nullable=False, index=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("naf_code", sa.String(6), nullable=False),
        sa.Column("naf_section", sa.String(1), nullable=False),
        sa.Column("headcount_band", sa.String(2), nullable=True),
        sa.Column("commune_insee", sa.String(5), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("territory_ids", sa.JSON(), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sites_commune_status", "sites", ["commune_insee", "status"])
    op.create_index("ix_sites_naf", "sites", ["naf_code"])
    op.create_table(
        "closure_shocks",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("site_id", sa.String(14), sa.ForeignKey("sites.siret"), nullable=False),
        sa.Column("territory_ids", sa.JSON(), nullable=True),
        sa.Column("announced_on", sa.Date(), nullable=False),
        sa.Column("jobs_lost", sa.Integer(), nullable=False),
        sa.Column("planned_closure_on", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declared_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_closure_shocks_site_id", "closure_shocks", ["site_id"])
    # At most one open shock per site, enforced by the database too: two concurrent
    # declarations cannot both pass the domain check and both commit.
    op.create_index(
        "ux_closure_shocks_open_site",
        "closure_shocks",
        ["site_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
    op.drop_table("closure_shocks")
    op.drop_table("sites")
    op.drop_table("territory_communes")
    op.drop_table("communes")
    op.drop_table("territory_groupements")
    op.drop_table("territories")
