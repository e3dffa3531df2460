"""Initial schema: catalogue (schemes, calls, selection rounds), projections of projects
and sites, matches, applications, idempotency keys, outbox and inbox.

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
    op.create_table('applications',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('scheme_id', sa.String(length=120), nullable=False),
    sa.Column('funder', sa.String(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('amount_requested_eur', sa.BigInteger(), nullable=False),
    sa.Column('amount_granted_eur', sa.BigInteger(), nullable=True),
    sa.Column('amount_paid_eur', sa.BigInteger(), nullable=False),
    sa.Column('decided_on', sa.Date(), nullable=True),
    sa.Column('refusal_reason', sa.String(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_applications_project_id'), 'applications', ['project_id'], unique=False)
    op.create_table('funding_projects',
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('territory_id', sa.String(length=20), nullable=False),
    sa.Column('site_id', sa.String(length=14), nullable=True),
    sa.Column('siren', sa.String(length=9), nullable=True),
    sa.Column('firm_name', sa.String(), nullable=True),
    sa.Column('naf_code', sa.String(length=6), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('jobs_planned', sa.Integer(), nullable=False),
    sa.Column('capex_eur', sa.BigInteger(), nullable=True),
    sa.Column('funding_need_eur', sa.BigInteger(), nullable=True),
    sa.Column('consent_to_share', sa.Boolean(), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('project_id')
    )
    op.create_table('funding_sites',
    sa.Column('site_id', sa.String(length=14), nullable=False),
    sa.Column('siren', sa.String(length=9), nullable=False),
    sa.Column('commune_insee', sa.String(length=5), nullable=False),
    sa.Column('headcount_band', sa.String(length=2), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('site_id')
    )
    op.create_table('matches',
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('scheme_id', sa.String(length=120), nullable=False),
    sa.Column('eligible', sa.Boolean(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('planned_amount_eur', sa.Integer(), nullable=False),
    sa.Column('criteria', sa.JSON(), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'scheme_id')
    )
    op.create_table('schemes',
    sa.Column('id', sa.String(length=120), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('funders', sa.JSON(), nullable=False),
    sa.Column('scale', sa.String(length=20), nullable=False),
    sa.Column('generated', sa.Boolean(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('calls',
    sa.Column('id', sa.String(length=120), nullable=False),
    sa.Column('scheme_id', sa.String(length=120), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['scheme_id'], ['schemes.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('selection_rounds',
    sa.Column('call_id', sa.String(length=120), nullable=False),
    sa.Column('round', sa.String(length=120), nullable=False),
    sa.Column('decided_on', sa.Date(), nullable=False),
    sa.Column('applications', sa.Integer(), nullable=False),
    sa.Column('selected', sa.Integer(), nullable=False),
    sa.Column('per_territory', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ),
    sa.PrimaryKeyConstraint('call_id', 'round')
    )
    create_idempotency_table(op)
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
    op.drop_table("idempotency_keys")
    for table in (
        "applications",
        "matches",
        "funding_projects",
        "funding_sites",
        "selection_rounds",
        "calls",
        "schemes",
    ):
        op.drop_table(table)
