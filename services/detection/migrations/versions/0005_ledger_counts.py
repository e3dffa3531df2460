"""The ledger's figures kept per shock: `ledger_shock_totals` (per shock and origin) and
`ledger_shock_months` (per shock, origin and month), so that reading a ledger reads a
few rows instead of every project of the territory. Backfilled here from the rows of
`ledger_projects` and `ledger_job_entries`, with the counting rule of the code that
keeps them from now on (`domain.ledger.contribution`, pure arithmetic).

A consumer of the previous release still running after this upgrade writes rows without
counts: `python -m services.detection rebuild-ledger` recounts them once it has stopped.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import uuid
from collections import defaultdict
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

from services.detection.domain.ledger import (
    MONTH_COUNTERS,
    ORIGINS,
    TOTAL_COUNTERS,
    Counts,
    LedgerProject,
    Shock,
    contribution,
)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The tables as this revision finds them (not the models, which move on).
_shocks = sa.table(
    "shocks",
    sa.column("shock_id", sa.Uuid()),
    sa.column("site_id", sa.String()),
    sa.column("territory_id", sa.String()),
    sa.column("announced_on", sa.Date()),
    sa.column("jobs_lost", sa.Integer()),
)
_projects = sa.table(
    "ledger_projects",
    sa.column("project_id", sa.Uuid()),
    sa.column("territory_id", sa.String()),
    sa.column("origin", sa.String()),
    sa.column("stage", sa.String()),
    sa.column("jobs_planned", sa.Integer()),
    sa.column("jobs_created", sa.Integer()),
    sa.column("detected_on", sa.Date()),
    sa.column("qualified_on", sa.Date()),
    sa.column("funded_on", sa.Date()),
    sa.column("under_review", sa.Boolean()),
    sa.column("merged_into", sa.Uuid()),
)
_entries = sa.table(
    "ledger_job_entries",
    sa.column("project_id", sa.Uuid()),
    sa.column("created_on", sa.Date()),
    sa.column("jobs_added", sa.Integer()),
)


def _counter(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    totals = op.create_table(
        "ledger_shock_totals",
        sa.Column("shock_id", sa.Uuid(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        *(_counter(c) for c in TOTAL_COUNTERS),
        sa.PrimaryKeyConstraint("shock_id", "origin"),
    )
    months = op.create_table(
        "ledger_shock_months",
        sa.Column("shock_id", sa.Uuid(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        *(_counter(c) for c in MONTH_COUNTERS),
        sa.PrimaryKeyConstraint("shock_id", "origin", "month"),
    )
    assert totals is not None and months is not None
    bind = op.get_bind()
    shocks: dict[str, list[Shock]] = defaultdict(list)
    for r in bind.execute(sa.select(_shocks)).all():
        shocks[r.territory_id].append(
            Shock(r.shock_id, r.territory_id, r.announced_on, r.jobs_lost, r.site_id)
        )
    for territory, its_shocks in shocks.items():
        # One territory at a time: its projects and their job entries.
        in_territory = _projects.c.territory_id == territory
        entries: dict[uuid.UUID, list[tuple[date, int]]] = defaultdict(list)
        joined = sa.select(_entries).join(
            _projects, _projects.c.project_id == _entries.c.project_id
        )
        for e in bind.execute(joined.where(in_territory)).all():
            entries[e.project_id].append((e.created_on, e.jobs_added))
        counts = {s.shock_id: Counts() for s in its_shocks}
        for r in bind.execute(sa.select(_projects).where(in_territory)).all():
            project = LedgerProject(
                project_id=r.project_id,
                territory_id=r.territory_id,
                origin=r.origin,
                stage=r.stage,
                jobs_planned=r.jobs_planned,
                jobs_created=r.jobs_created,
                detected_on=r.detected_on,
                qualified_on=r.qualified_on,
                funded_on=r.funded_on,
                job_entries=tuple(sorted(entries.get(r.project_id, ()))),
                under_review=bool(r.under_review),
                merged_into=r.merged_into,
            )
            for shock in its_shocks:
                counts[shock.shock_id].add(contribution(shock, project))
        for shock_id, c in counts.items():
            _insert(bind, totals, months, shock_id, c.nonzero())


def _insert(bind: Any, totals: sa.Table, months: sa.Table, shock_id: uuid.UUID, c: Counts) -> None:
    rows = [
        {"shock_id": shock_id, "origin": o, **{k: c.totals.get((o, k), 0) for k in TOTAL_COUNTERS}}
        for o in ORIGINS
        if any(c.totals.get((o, k)) for k in TOTAL_COUNTERS)
    ]
    if rows:
        bind.execute(sa.insert(totals), rows)
    per_month: dict[tuple[date, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(MONTH_COUNTERS, 0)
    )
    for (month, origin, counter), n in c.months.items():
        per_month[date(month.year, month.month, 1), origin][counter] = n
    if per_month:
        bind.execute(
            sa.insert(months),
            [
                {"shock_id": shock_id, "origin": origin, "month": day, **values}
                for (day, origin), values in sorted(per_month.items())
            ],
        )


def downgrade() -> None:
    op.drop_table("ledger_shock_months")
    op.drop_table("ledger_shock_totals")
