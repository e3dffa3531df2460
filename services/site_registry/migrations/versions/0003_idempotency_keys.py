"""Idempotency keys: every POST and PUT of the API goes through the command bus, which
stores each key's first answer in the same transaction as its effect.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from alembic import op

from shared.migration_ops import create_idempotency_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table(op)


def downgrade() -> None:
    op.drop_table("idempotency_keys")
