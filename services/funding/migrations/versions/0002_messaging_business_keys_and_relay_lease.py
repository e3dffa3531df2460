"""Messaging: inbox business keys (a re-sent fact under a new event id changes nothing)
and the relay lease (one publisher, with a fencing token).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from alembic import op

from shared.migration_ops import downgrade_messaging_tables_0002, upgrade_messaging_tables_0002

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_messaging_tables_0002(op)


def downgrade() -> None:
    downgrade_messaging_tables_0002(op)
