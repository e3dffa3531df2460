"""The job-compensation ledger as a projection: applies project events and closure
announcements to the ledger's rows, the shocks, and each shock's counts.

Two halves: `batch` (pure) folds a batch of events into the rows to write, and
`LedgerProjection` writes them, one statement per table. Every write is idempotent and
order-safe per project: a project's row is replaced only by a newer version, a job entry
is keyed by the event's version, a shock by its id. So the live consumer, a replay, and a
rebuild running beside the live consumer all converge on the same rows.

The figures are kept beside the rows, per shock (`ledger_shock_totals`,
`ledger_shock_months`): the live path reads the projects' rows before and after its
write, and adds to each shock of their territory the difference of their contributions
(`domain.ledger.contribution`) with atomic increments, in the same transaction. Derived
from what the rows hold after the write, never from the event, the counts stay equal to
what the rows give (`recount`), whatever the order or repetition of the events. A new
shock is counted once from the rows already there; a rebuild writes the rows alone and
recounts every shock at the end.

Concurrency (PostgreSQL; SQLite serializes writers, and the consumer's first statement,
the inbox insert, makes its transaction a writer): the read-before-write must see every
committed change of its projects, so a project's transactions take a per-project lock
first, and the ones that recount from the rows (a new shock, a rebuild) exclude them all
with one lock the project writers hold shared.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from services.detection.adapters.orm import (
    LedgerJobEntryRow,
    LedgerProjectRow,
    LedgerShockMonthRow,
    LedgerShockTotalsRow,
    ShockRow,
)
from services.detection.domain.ledger import (
    MONTH_COUNTERS,
    ORIGINS,
    TOTAL_COUNTERS,
    Counts,
    LedgerProject,
    Month,
    Shock,
    contribution,
)
from services.detection.domain.stages import Stage, reached
from shared.db import lock_for_transaction
from shared.events import detection as dt
from shared.events import site_registry as sr
from shared.events.envelope import Envelope, EventPayload
from shared.messaging.tables import InboxMessage


@dataclass(frozen=True)
class ProjectLine:
    """A project as the ledger counts it (a row of `ledger_projects`)."""

    project_id: uuid.UUID
    version: int
    territory_id: str
    origin: str
    stage: str
    jobs_planned: int
    jobs_created: int
    detected_on: date
    qualified_on: date | None  # the day it was first seen qualified or later
    funded_on: date | None  # the day it was first seen funded or later
    under_review: bool
    merged_into: uuid.UUID | None


@dataclass(frozen=True)
class JobEntry:
    project_id: uuid.UUID
    version: int  # of the JobsCreated event: a replayed event adds nothing
    created_on: date
    jobs_added: int


@dataclass
class Batch:
    """What a batch of events writes: per project its latest line, the job entries, the
    shocks announced."""

    projects: dict[uuid.UUID, ProjectLine] = field(default_factory=dict)
    job_entries: list[JobEntry] = field(default_factory=list)
    shocks: list[Shock] = field(default_factory=list)


def line_of(event: dt.ProjectState) -> ProjectLine:
    day = event.occurred_at.date()
    stage = Stage(event.stage)
    return ProjectLine(
        project_id=event.project_id,
        version=event.version,
        territory_id=event.territory_id,
        origin=event.origin,
        stage=event.stage,
        jobs_planned=event.jobs_planned,
        jobs_created=event.jobs_created,
        detected_on=event.detected_on,
        # The day a stage was first reached: the stored one is kept (see the upsert), so
        # a later event does not move it.
        qualified_on=day if reached(stage, Stage.QUALIFIED) else None,
        funded_on=day if reached(stage, Stage.FUNDED) else None,
        # Readers of events from before the duplicate flag find None: not under review.
        under_review=event.possible_duplicate_of is not None,
        merged_into=event.merged_into if isinstance(event, dt.ProjectMerged) else None,
    )


def counted(row: Any, entries: Iterable[JobEntry | LedgerJobEntryRow | Any]) -> LedgerProject:
    """What the ledger counts of a stored project (a `ProjectLine`, a `LedgerProjectRow`
    or a row of that table read with Core), with its job entries."""
    return LedgerProject(
        project_id=row.project_id,
        territory_id=row.territory_id,
        origin=row.origin,
        stage=row.stage,
        jobs_planned=row.jobs_planned,
        jobs_created=row.jobs_created,
        detected_on=row.detected_on,
        qualified_on=row.qualified_on,
        funded_on=row.funded_on,
        job_entries=tuple(sorted((e.created_on, e.jobs_added) for e in entries)),
        under_review=row.under_review,
        merged_into=row.merged_into,
    )


def shock_of(event: sr.ClosureAnnounced) -> Shock | None:
    """The shock, counted in its primary territory; None for a shock outside every
    territory (no crisis cell, no ledger, no project can be declared for it)."""
    territory_id = event.primary_territory_id
    if territory_id is None:
        return None
    return Shock(
        shock_id=event.shock_id,
        territory_id=territory_id,
        announced_on=event.announced_on,
        jobs_lost=event.jobs_lost,
        site_id=event.site_id,
    )


def batch(events: Iterable[EventPayload]) -> Batch:
    """Fold events (any order across projects; per project, any order too) into the rows
    to write; events of no interest to the ledger are skipped."""
    out = Batch()
    for event in events:
        if isinstance(event, dt.ProjectState):
            line = line_of(event)
            known = out.projects.get(event.project_id)
            out.projects[event.project_id] = line if known is None else _combined(known, line)
            if isinstance(event, dt.JobsCreated) and event.jobs_added:
                out.job_entries.append(
                    JobEntry(event.project_id, event.version, event.created_on, event.jobs_added)
                )
        elif isinstance(event, sr.ClosureAnnounced):
            shock = shock_of(event)
            if shock is not None:
                out.shocks.append(shock)
    return out


def batch_of_envelopes(envelopes: list[Envelope[EventPayload]]) -> Batch:
    """`batch` of decoded messages: the rebuild's fold, run in its decoding processes
    (module-level, so that they can import it; a `Batch` pickles)."""
    return batch(e.payload for e in envelopes)


def _combined(known: ProjectLine, new: ProjectLine) -> ProjectLine:
    # Within a batch: the latest version's figures, the earliest stage dates.
    latest = new if new.version >= known.version else known
    qualified_on = _earliest(known.qualified_on, new.qualified_on)
    funded_on = _earliest(known.funded_on, new.funded_on)
    if qualified_on == latest.qualified_on and funded_on == latest.funded_on:
        return latest  # the common case: no copy (a rebuild folds ~80,000 of them)
    return replace(latest, qualified_on=qualified_on, funded_on=funded_on)


def _earliest(a: date | None, b: date | None) -> date | None:
    return min(a, b) if a is not None and b is not None else a or b


#: Taken shared by every transaction that changes projects' rows, exclusively by those
#: that count from the rows (a new shock, a rebuild): see the module's docstring.
LEDGER_LOCK = "detection.ledger"
_TOTALS = LedgerShockTotalsRow.__table__  # type: ignore[attr-defined]
_MONTHS = LedgerShockMonthRow.__table__  # type: ignore[attr-defined]
_PROJECTS = LedgerProjectRow.__table__  # type: ignore[attr-defined]
_ENTRIES = LedgerJobEntryRow.__table__  # type: ignore[attr-defined]
_IN_CHUNK = 500  # ids per `IN (...)`: far below SQLite's bound on parameters


class LedgerProjection:
    """Writes batches to the ledger's tables, the shocks and the shocks' counts."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._postgresql = session.bind is not None and session.bind.dialect.name == "postgresql"

    async def apply(self, events: Iterable[EventPayload]) -> None:
        """The live path: the rows, and the counts of every shock they move."""
        rows = batch(events)
        ids = sorted(set(rows.projects) | {e.project_id for e in rows.job_entries}, key=str)
        if not ids and not rows.shocks:
            return
        await lock_for_transaction(self._session, LEDGER_LOCK, shared=not rows.shocks)
        await self._lock_projects(ids)
        for shock in rows.shocks:
            await self._record_shock(shock)
        if not ids:
            return
        before = await self._counted(ids)
        await self.write(rows)
        after = await self._counted(ids)
        territories = {p.territory_id for p in (*before.values(), *after.values())}
        shocks = await self._shocks_by_territory(territories)
        delta: dict[uuid.UUID, Counts] = defaultdict(Counts)
        for sign, projects in ((-1, before), (1, after)):
            for p in projects.values():
                for shock in shocks.get(p.territory_id, ()):
                    contribution(shock, p, into=delta[shock.shock_id], sign=sign)
        await self._increment(delta)

    async def write_only(self, events: Iterable[EventPayload]) -> None:
        """The rows alone, no count: the rebuild's path (it recounts at the end)."""
        await self.write(batch(events))

    async def write(self, rows: Batch) -> None:
        projects = [vars(p) for p in rows.projects.values()]
        entries = [vars(e) for e in rows.job_entries]
        if self._postgresql:
            # One statement per table and batch, its rows as one array per column
            # (`INSERT … SELECT FROM unnest(…)`): one round trip and no per-row work in
            # SQLAlchemy, where an executemany cost a few rows per round trip.
            if projects:
                await self._session.execute(_PG_PROJECTS, _columns(projects, _PROJECT_TYPES))
            if entries:
                await self._session.execute(_PG_ENTRIES, _columns(entries, _ENTRY_TYPES))
        else:
            # One statement per table, executed with many parameter sets: compiled once
            # and cached, instead of a new multi-row INSERT for every batch.
            if projects:
                await self._session.execute(_project_upsert(sqlite.insert(_PROJECTS)), projects)
            if entries:
                await self._session.execute(
                    sqlite.insert(_ENTRIES).on_conflict_do_nothing(), entries
                )
        insert = _insert(self._session)
        if rows.shocks:
            await self._session.execute(
                insert(ShockRow).on_conflict_do_nothing(), [vars(s) for s in rows.shocks]
            )

    async def reset(self, consumer: str) -> None:
        """Forget every project the ledger counted, their counts, and what `consumer`
        processed, for a rebuild. Shocks stay: the commands need them too, and a replay
        re-inserts any missing one unchanged. Holds off the live writers until the
        rebuild commits (they then apply their events on top of the rebuilt rows)."""
        await lock_for_transaction(self._session, LEDGER_LOCK)
        for table in (LedgerJobEntryRow, LedgerProjectRow, LedgerShockTotalsRow):
            await self._session.exec(delete(table))
        await self._session.exec(delete(LedgerShockMonthRow))
        await self._session.exec(delete(InboxMessage).where(col(InboxMessage.consumer) == consumer))

    async def recount(self, shock_ids: Sequence[uuid.UUID] | None = None) -> None:
        """Replace the counts of these shocks (None: every shock) by the ones computed
        from the rows: a new shock's, a rebuild's."""
        query = sa.select(ShockRow.__table__)  # type: ignore[attr-defined]
        if shock_ids is not None:
            query = query.where(col(ShockRow.shock_id).in_(shock_ids))
        shocks = [_shock_of_row(r) for r in (await self._session.execute(query)).all()]
        for table in (_TOTALS, _MONTHS):
            stmt = sa.delete(table)
            if shock_ids is not None:
                stmt = stmt.where(table.c.shock_id.in_(shock_ids))
            await self._session.execute(stmt)
        by_territory: dict[str, list[Shock]] = defaultdict(list)
        for shock in shocks:
            by_territory[shock.territory_id].append(shock)
        counts: dict[uuid.UUID, Counts] = defaultdict(Counts)
        async for p in stored_projects(self._session, sorted(by_territory)):
            for shock in by_territory[p.territory_id]:
                if p.detected_on >= shock.announced_on:  # else: contributes nothing
                    contribution(shock, p, into=counts[shock.shock_id])
        await self._increment(counts)

    async def _record_shock(self, shock: Shock) -> None:
        insert = _insert(self._session)
        result = await self._session.execute(
            insert(ShockRow).values(**vars(shock)).on_conflict_do_nothing()
        )
        if getattr(result, "rowcount", 0):
            # Projects of its territory may be counted already: once, from their rows.
            await self.recount([shock.shock_id])

    async def _lock_projects(self, ids: Sequence[uuid.UUID]) -> None:
        if not self._postgresql or not ids:
            return
        # In a fixed order (two batches never wait on each other in a cycle); released
        # at commit. A key from the id's hash: a collision only serializes two projects.
        keys = sorted(_lock_key(f"{LEDGER_LOCK}:{i}") for i in ids)
        await self._session.execute(
            sa.text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS BIGINT[])) AS k"
            ),
            {"keys": keys},
        )

    async def _counted(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, LedgerProject]:
        out: dict[uuid.UUID, LedgerProject] = {}
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i : i + _IN_CHUNK]
            rows = (
                await self._session.execute(
                    sa.select(_PROJECTS).where(_PROJECTS.c.project_id.in_(chunk))
                )
            ).all()
            entries: dict[uuid.UUID, list[Any]] = defaultdict(list)
            for e in (
                await self._session.execute(
                    sa.select(_ENTRIES).where(_ENTRIES.c.project_id.in_(chunk))
                )
            ).all():
                entries[e.project_id].append(e)
            for r in rows:
                out[r.project_id] = counted(r, entries.get(r.project_id, ()))
        return out

    async def _shocks_by_territory(self, territories: Iterable[str]) -> dict[str, list[Shock]]:
        wanted = sorted(set(territories))
        if not wanted:
            return {}
        query = sa.select(ShockRow.__table__).where(  # type: ignore[attr-defined]
            col(ShockRow.territory_id).in_(wanted)
        )
        out: dict[str, list[Shock]] = defaultdict(list)
        for r in (await self._session.execute(query)).all():
            out[r.territory_id].append(_shock_of_row(r))
        return out

    async def _increment(self, counts: Mapping[uuid.UUID, Counts]) -> None:
        """Add `counts` to the stored ones: `SET n = n + :d`, atomic, so two transactions
        adding to one shock (two partitions' consumers) both count."""
        totals: list[dict[str, Any]] = []
        months: list[dict[str, Any]] = []
        for shock_id, counted_ in counts.items():
            c = counted_.nonzero()
            for origin in ORIGINS:
                values = {k: c.totals.get((origin, k), 0) for k in TOTAL_COUNTERS}
                if any(values.values()):
                    totals.append({"shock_id": shock_id, "origin": origin, **values})
            per_month: dict[tuple[Month, str], dict[str, int]] = defaultdict(
                lambda: dict.fromkeys(MONTH_COUNTERS, 0)
            )
            for (month, month_origin, counter), n in c.months.items():
                per_month[month, month_origin][counter] = n
            for (month, month_origin), values in sorted(per_month.items()):
                first_day = date(month.year, month.month, 1)
                months.append(
                    {"shock_id": shock_id, "origin": month_origin, "month": first_day, **values}
                )
        # Rows in one global order: two transactions incrementing the same rows lock
        # them in the same order, so never in a cycle (no deadlock).
        totals.sort(key=lambda r: (str(r["shock_id"]), r["origin"]))
        months.sort(key=lambda r: (str(r["shock_id"]), r["origin"], r["month"]))
        insert = _insert(self._session)
        if totals:
            await self._session.execute(
                _increment(insert, _TOTALS, ["shock_id", "origin"], TOTAL_COUNTERS), totals
            )
        if months:
            await self._session.execute(
                _increment(insert, _MONTHS, ["shock_id", "origin", "month"], MONTH_COUNTERS),
                months,
            )


async def stored_counts(session: AsyncSession, shock_id: uuid.UUID) -> Counts:
    """A shock's counts as stored: what `domain.ledger.ledger_of_counts` reads."""
    out = Counts()
    for r in (
        await session.execute(sa.select(_TOTALS).where(_TOTALS.c.shock_id == shock_id))
    ).all():
        for counter in TOTAL_COUNTERS:
            out.totals[r.origin, counter] = getattr(r, counter)
    for r in (
        await session.execute(sa.select(_MONTHS).where(_MONTHS.c.shock_id == shock_id))
    ).all():
        month = Month(r.month.year, r.month.month)
        for counter in MONTH_COUNTERS:
            out.months[month, r.origin, counter] = getattr(r, counter)
    return out


async def stored_projects(
    session: AsyncSession, territories: Sequence[str], *, chunk: int = 5000
) -> AsyncIterator[LedgerProject]:
    """Every stored project of `territories`, with its job entries, streamed: pages of
    `chunk` projects by id (keyset), so memory holds one page whatever the volume."""
    if not territories:
        return
    after: uuid.UUID | None = None
    while True:
        query = (
            sa.select(_PROJECTS)
            .where(_PROJECTS.c.territory_id.in_(territories))
            .order_by(_PROJECTS.c.project_id)
            .limit(chunk)
        )
        if after is not None:
            query = query.where(_PROJECTS.c.project_id > after)
        rows = (await session.execute(query)).all()
        if not rows:
            return
        entries: dict[uuid.UUID, list[Any]] = defaultdict(list)
        page = (
            sa.select(_ENTRIES)
            .join(_PROJECTS, _PROJECTS.c.project_id == _ENTRIES.c.project_id)
            .where(_PROJECTS.c.territory_id.in_(territories))
            .where(_ENTRIES.c.project_id >= rows[0].project_id)
            .where(_ENTRIES.c.project_id <= rows[-1].project_id)
        )
        for e in (await session.execute(page)).all():
            entries[e.project_id].append(e)
        for r in rows:
            yield counted(r, entries.get(r.project_id, ()))
        after = rows[-1].project_id


def _shock_of_row(r: Any) -> Shock:
    return Shock(
        shock_id=r.shock_id,
        territory_id=r.territory_id,
        announced_on=r.announced_on,
        jobs_lost=r.jobs_lost,
        site_id=r.site_id,
    )


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _increment(insert: Any, table: sa.Table, keys: list[str], counters: Sequence[str]) -> Any:
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={c: table.c[c] + stmt.excluded[c] for c in counters}
    )


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _unnest(types: Mapping[str, str]) -> sa.Select[Any]:
    """`SELECT * FROM unnest(CAST(:a AS T[]), …)`: rows from one array per column."""
    arrays = ", ".join(f"CAST(:{name} AS {sql_type}[])" for name, sql_type in types.items())
    return sa.select(sa.text("*")).select_from(sa.text(f"unnest({arrays}) AS batch"))


def _columns(rows: Sequence[Mapping[str, Any]], types: Mapping[str, str]) -> dict[str, list[Any]]:
    return {name: [r[name] for r in rows] for name in types}


_PROJECT_TYPES: Final = {
    "project_id": "UUID",
    "version": "INTEGER",
    "territory_id": "VARCHAR",
    "origin": "VARCHAR",
    "stage": "VARCHAR",
    "jobs_planned": "INTEGER",
    "jobs_created": "INTEGER",
    "detected_on": "DATE",
    "qualified_on": "DATE",
    "funded_on": "DATE",
    "under_review": "BOOLEAN",
    "merged_into": "UUID",
}
_ENTRY_TYPES: Final = {
    "project_id": "UUID",
    "version": "INTEGER",
    "created_on": "DATE",
    "jobs_added": "INTEGER",
}


def _project_upsert(stmt: Any) -> Any:
    """The version-guarded upsert of a project's row, on `stmt` (an INSERT of values or
    of a SELECT): one rule for both."""
    table = _PROJECTS
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["project_id"],
        set_={
            "version": excluded.version,
            "territory_id": excluded.territory_id,
            "origin": excluded.origin,
            "stage": excluded.stage,
            "jobs_planned": excluded.jobs_planned,
            "jobs_created": excluded.jobs_created,
            "detected_on": excluded.detected_on,
            "qualified_on": sa.func.coalesce(table.c.qualified_on, excluded.qualified_on),
            "funded_on": sa.func.coalesce(table.c.funded_on, excluded.funded_on),
            "under_review": excluded.under_review,
            # A merge is final: no later version of the project exists to undo it.
            "merged_into": sa.func.coalesce(table.c.merged_into, excluded.merged_into),
        },
        where=table.c.version < excluded.version,
    )


# Built once: compiled once, then from SQLAlchemy's cache.
_PG_PROJECTS: Final = _project_upsert(
    postgresql.insert(_PROJECTS).from_select(list(_PROJECT_TYPES), _unnest(_PROJECT_TYPES))
)
_PG_ENTRIES: Final = (
    postgresql.insert(_ENTRIES)
    .from_select(list(_ENTRY_TYPES), _unnest(_ENTRY_TYPES))
    .on_conflict_do_nothing()
)
