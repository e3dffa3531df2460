"""Applications recorded after the fact: the day they were filed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: the applications recorded so far were filed when recorded.
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("filed_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("filed_on")
