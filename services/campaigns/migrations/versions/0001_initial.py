"""Initial schema: site projection, campaigns, targets, visits, surveys, idempotency keys,
outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import create_idempotency_table, create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_sites",
        sa.Column("site_id", sa.String(14), primary_key=True),
        sa.Column("siren", sa.String(9), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("naf_code", sa.String(6), nullable=False),
        sa.Column("naf_section", sa.String(1), nullable=False),
        sa.Column("headcount_band", sa.String(2), nullable=True),
        sa.Column("commune_insee", sa.String(5), nullable=False),
        sa.Column("territory_ids", sa.JSON(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "campaign_site_territories",
        sa.Column("territory_id", sa.String(20), primary_key=True),
        sa.Column("site_id", sa.String(14), primary_key=True),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("shock_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("territory_id", sa.String(20), nullable=False, index=True),
        sa.Column("closing_site_id", sa.String(14), nullable=False),
        sa.Column("closing_naf_code", sa.String(6), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("budget_days", sa.Float(), nullable=False),
        sa.Column("cost_per_visit_days", sa.Float(), nullable=False),
        sa.Column("daily_cap", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("roster", sa.JSON(), nullable=True),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("launched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "campaign_targets",
        sa.Column("campaign_id", sa.Uuid(), sa.ForeignKey("campaigns.id"), primary_key=True),
        sa.Column("site_id", sa.String(14), primary_key=True),
        sa.Column("siren", sa.String(9), nullable=False),
        sa.Column("naf_code", sa.String(6), nullable=False),
        sa.Column("headcount_band", sa.String(2), nullable=True),
        sa.Column("commune_insee", sa.String(5), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("priority_score", sa.Float(), nullable=False),
        sa.Column("priority_reasons", sa.JSON(), nullable=True),
        sa.Column("uncovered_reason", sa.String(), nullable=True),
    )
    op.create_table(
        "visits",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("campaign_id", sa.Uuid(), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("site_id", sa.String(14), nullable=False),
        sa.Column("consultant_id", sa.String(200), nullable=False),
        sa.Column("scheduled_on", sa.Date(), nullable=True),
        sa.Column("day_order", sa.Integer(), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("outcome_reason", sa.String(), nullable=True),
        sa.Column("visited_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_visits_campaign_id", "visits", ["campaign_id"])
    op.create_index("ix_visits_consultant_day", "visits", ["consultant_id", "scheduled_on"])
    op.create_table(
        "surveys",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("campaign_id", sa.Uuid(), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("site_id", sa.String(14), nullable=False),
        sa.Column("consultant_id", sa.String(200), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("questionnaire_version", sa.String(20), nullable=False),
        sa.Column("headcount", sa.Integer(), nullable=True),
        sa.Column("projects", sa.JSON(), nullable=False),
        sa.Column("red_flags", sa.JSON(), nullable=False),
        sa.Column("contact_name", sa.String(), nullable=True),
        sa.Column("contact_phone", sa.String(), nullable=True),
        sa.Column("comments", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("campaign_id", "site_id", "revision"),
    )
    op.create_index("ix_surveys_campaign_id", "surveys", ["campaign_id"])
    create_idempotency_table(op)
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
    op.drop_table("idempotency_keys")
    op.drop_table("surveys")
    op.drop_table("visits")
    op.drop_table("campaign_targets")
    op.drop_table("campaigns")
    op.drop_table("campaign_site_territories")
    op.drop_table("campaign_sites")
