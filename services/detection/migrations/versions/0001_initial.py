"""Initial schema: projects (leads, reports, timeline), site and shock projections, the
ledger projection, idempotency keys, outbox and inbox.

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
    op.create_table('detection_sites',
    sa.Column('site_id', sa.String(length=14), nullable=False),
    sa.Column('siren', sa.String(length=9), nullable=False),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('naf_code', sa.String(length=6), nullable=False),
    sa.Column('commune_insee', sa.String(length=5), nullable=False),
    sa.Column('territory_ids', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('site_id')
    )
    op.create_index('ix_detection_sites_siren', 'detection_sites', ['siren'], unique=False)
    op.create_table('ledger_job_entries',
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.Date(), nullable=False),
    sa.Column('jobs_added', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'version')
    )
    op.create_table('ledger_projects',
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('territory_id', sa.String(length=20), nullable=False),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('jobs_planned', sa.Integer(), nullable=False),
    sa.Column('jobs_created', sa.Integer(), nullable=False),
    sa.Column('detected_on', sa.Date(), nullable=False),
    sa.Column('qualified_on', sa.Date(), nullable=True),
    sa.Column('funded_on', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('project_id')
    )
    op.create_index('ix_ledger_projects_territory', 'ledger_projects', ['territory_id'], unique=False)
    op.create_table('ledger_shocks',
    sa.Column('shock_id', sa.Uuid(), nullable=False),
    sa.Column('site_id', sa.String(length=14), nullable=False),
    sa.Column('territory_id', sa.String(length=20), nullable=False),
    sa.Column('announced_on', sa.Date(), nullable=False),
    sa.Column('jobs_lost', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('shock_id')
    )
    op.create_table('projects',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('territory_id', sa.String(length=20), nullable=False),
    sa.Column('shock_id', sa.Uuid(), nullable=True),
    sa.Column('campaign_id', sa.Uuid(), nullable=True),
    sa.Column('site_id', sa.String(length=14), nullable=True),
    sa.Column('siren', sa.String(length=9), nullable=True),
    sa.Column('firm_name', sa.String(), nullable=True),
    sa.Column('naf_code', sa.String(length=6), nullable=True),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('hidden', sa.Boolean(), nullable=False),
    sa.Column('jobs_planned', sa.Integer(), nullable=False),
    sa.Column('jobs_created', sa.Integer(), nullable=False),
    sa.Column('jobs_complete', sa.Boolean(), nullable=False),
    sa.Column('capex_eur', sa.BigInteger(), nullable=True),
    sa.Column('funding_need_eur', sa.BigInteger(), nullable=True),
    sa.Column('maturity', sa.String(length=20), nullable=True),
    sa.Column('obstacles', sa.JSON(), nullable=False),
    sa.Column('consent_to_share', sa.Boolean(), nullable=False),
    sa.Column('land_needs_ha', sa.Float(), nullable=True),
    sa.Column('detected_on', sa.Date(), nullable=False),
    sa.Column('abandoned_reason', sa.String(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_projects_campaign_id'), 'projects', ['campaign_id'], unique=False)
    op.create_index('ix_projects_siren', 'projects', ['siren'], unique=False)
    op.create_index('ix_projects_territory_stage', 'projects', ['territory_id', 'stage'], unique=False)
    op.create_table('shocks',
    sa.Column('shock_id', sa.Uuid(), nullable=False),
    sa.Column('site_id', sa.String(length=14), nullable=False),
    sa.Column('territory_ids', sa.JSON(), nullable=False),
    sa.Column('announced_on', sa.Date(), nullable=False),
    sa.Column('jobs_lost', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('shock_id')
    )
    op.create_table('project_history',
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('event_type', sa.String(length=200), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('project_id', 'version')
    )
    op.create_table('project_leads',
    sa.Column('lead_id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('lead_id')
    )
    op.create_index(op.f('ix_project_leads_project_id'), 'project_leads', ['project_id'], unique=False)
    op.create_table('project_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('reference', sa.String(), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_project_reports_project_id'), 'project_reports', ['project_id'], unique=False)
    create_idempotency_table(op)
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
    op.drop_table("idempotency_keys")
    for table in (
        "ledger_job_entries",
        "ledger_projects",
        "ledger_shocks",
        "project_history",
        "project_reports",
        "project_leads",
        "projects",
        "shocks",
        "detection_sites",
    ):
        op.drop_table(table)
