"""One shock table: `shocks` keeps each shock's primary territory (where its projects are
declared and its ledger counts them) instead of every territory, and `ledger_shocks`, its
copy for the ledger, goes. A shock outside every territory is dropped: no crisis cell
declares a project for it, no ledger counts it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The tables as this revision finds them (not the models, which move on).
_shocks = sa.table(
    "shocks",
    sa.column("shock_id", sa.Uuid()),
    sa.column("site_id", sa.String()),
    sa.column("territory_ids", sa.JSON()),
    sa.column("territory_id", sa.String()),
    sa.column("announced_on", sa.Date()),
    sa.column("jobs_lost", sa.Integer()),
)
_ledger_shocks = sa.table(
    "ledger_shocks",
    sa.column("shock_id", sa.Uuid()),
    sa.column("site_id", sa.String()),
    sa.column("territory_id", sa.String()),
    sa.column("announced_on", sa.Date()),
    sa.column("jobs_lost", sa.Integer()),
)
_COPIED = ("shock_id", "site_id", "territory_id", "announced_on", "jobs_lost")


def upgrade() -> None:
    with op.batch_alter_table("shocks") as batch:
        batch.add_column(sa.Column("territory_id", sa.String(length=20), nullable=True))
    bind = op.get_bind()
    counted = {r.shock_id: r for r in bind.execute(sa.select(_ledger_shocks)).all()}
    for row in bind.execute(sa.select(_shocks.c.shock_id, _shocks.c.territory_ids)).all():
        # The ledger's territory is the one it already counted the shock in; otherwise
        # the first of the shock's territories, as ClosureAnnounced.primary_territory_id.
        listed = list(row.territory_ids or [])
        known = counted.get(row.shock_id)
        primary = known.territory_id if known is not None else (listed[0] if listed else None)
        where = _shocks.c.shock_id == row.shock_id
        if primary is None:
            bind.execute(sa.delete(_shocks).where(where))
        else:
            bind.execute(sa.update(_shocks).where(where).values(territory_id=primary))
    present = {r.shock_id for r in bind.execute(sa.select(_shocks.c.shock_id)).all()}
    only_in_ledger = [
        {**{c: getattr(r, c) for c in _COPIED}, "territory_ids": [r.territory_id]}
        for shock_id, r in counted.items()
        if shock_id not in present
    ]
    if only_in_ledger:
        bind.execute(sa.insert(_shocks), only_in_ledger)
    with op.batch_alter_table("shocks") as batch:
        batch.alter_column("territory_id", existing_type=sa.String(length=20), nullable=False)
        batch.drop_column("territory_ids")
    op.drop_table("ledger_shocks")


def downgrade() -> None:
    # Lossy where a shock had several territories: `territory_ids` gets its primary one.
    op.create_table(
        "ledger_shocks",
        sa.Column("shock_id", sa.Uuid(), nullable=False),
        sa.Column("site_id", sa.String(length=14), nullable=False),
        sa.Column("territory_id", sa.String(length=20), nullable=False),
        sa.Column("announced_on", sa.Date(), nullable=False),
        sa.Column("jobs_lost", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("shock_id"),
    )
    with op.batch_alter_table("shocks") as batch:
        batch.add_column(sa.Column("territory_ids", sa.JSON(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(*(_shocks.c[c] for c in _COPIED))).all()
    for r in rows:
        bind.execute(
            sa.update(_shocks)
            .where(_shocks.c.shock_id == r.shock_id)
            .values(territory_ids=[r.territory_id])
        )
    if rows:
        bind.execute(sa.insert(_ledger_shocks), [{c: getattr(r, c) for c in _COPIED} for r in rows])
    with op.batch_alter_table("shocks") as batch:
        batch.alter_column("territory_ids", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("territory_id")
