"""Rows ↔ the domain's objects, and the repositories: the only code that queries rows for
commands and handlers (the views read rows for the API). Each repository has an abstract
base, which the fake unit of work of the service-layer tests implements in memory."""

from __future__ import annotations

import abc
import uuid
from collections.abc import Collection, Sequence
from dataclasses import fields
from datetime import date, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.funding.adapters.orm import (
    ApplicationRow,
    CallRow,
    FunderFeedEntryRow,
    FunderWebhookRow,
    FundingProjectRow,
    FundingSiteRow,
    MatchRow,
    SchemeRow,
    SelectionRoundRow,
)
from services.funding.domain.applications import Application
from services.funding.domain.catalogue import (
    Call,
    Perimeter,
    RoundResult,
    Scheme,
    SelectionRound,
)
from services.funding.domain.matching import IndexedCatalogue
from services.funding.domain.plan import FinancingPlan
from services.funding.domain.projects import FundingProject, FundingSite, ProjectMatch
from services.funding.domain.webhooks import Webhook
from shared.db import lock_for_transaction
from shared.events.envelope import Envelope, EventPayload
from shared.events.funding import CriterionResult
from shared.messaging.tables import utcnow
from shared.projection import upsert_newer

_SET_FIELDS = ("beneficiaries", "naf_sections", "kinds", "themes")
_DATE_FIELDS = ("opens_on", "closes_on")


# --- rows ↔ domain -----------------------------------------------------------------------


def scheme_to_dict(scheme: Scheme) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(scheme):
        if not f.init:
            continue
        value = getattr(scheme, f.name)
        if f.name == "perimeter":
            value = {"scale": value.scale, "codes": list(value.codes)}
        elif f.name in _SET_FIELDS:
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, date):
            value = value.isoformat()
        out[f.name] = value
    return out


def scheme_from_dict(data: dict[str, Any]) -> Scheme:
    values = dict(data)
    perimeter = values.pop("perimeter")
    for name in _SET_FIELDS:
        values[name] = frozenset(values.get(name) or ())
    for name in ("funders", "naf_prefixes"):
        values[name] = tuple(values.get(name) or ())
    for name in _DATE_FIELDS:
        if values.get(name):
            values[name] = date.fromisoformat(values[name])
    return Scheme(
        perimeter=Perimeter(perimeter["scale"], tuple(perimeter.get("codes") or ())), **values
    )


def scheme_row(scheme: Scheme, *, version: int = 1) -> SchemeRow:
    return SchemeRow(
        id=scheme.id,
        name=scheme.name,
        funders=list(scheme.funders),
        scale=scheme.perimeter.scale,
        generated=scheme.generated,
        data=scheme_to_dict(scheme),
        version=version,
        updated_at=utcnow(),
    )


async def upsert_scheme(session: AsyncSession, scheme: Scheme) -> bool:
    """True when the scheme is new or changed."""
    row = await session.get(SchemeRow, scheme.id, with_for_update=True)
    data = scheme_to_dict(scheme)
    if row is None:
        session.add(scheme_row(scheme))
        return True
    if row.data == data:
        return False
    fresh = scheme_row(scheme, version=row.version + 1)
    for name in ("name", "funders", "scale", "generated", "data", "version", "updated_at"):
        setattr(row, name, getattr(fresh, name))
    return True


def call_data(call: Call) -> dict[str, object]:
    return {
        "rounds": [
            {
                "name": r.name,
                "closes_on": r.closes_on.isoformat() if r.closes_on else None,
                "envelope_eur": r.envelope_eur,
                "quota": r.quota,
            }
            for r in call.rounds
        ],
        "source_url": call.source_url,
        "source": call.source,
    }


def call_of(row: CallRow) -> Call:
    data = cast(dict[str, Any], row.data)
    return Call(
        id=row.id,
        scheme_id=row.scheme_id,
        name=row.name,
        rounds=tuple(
            SelectionRound(
                name=r["name"],
                closes_on=date.fromisoformat(r["closes_on"]) if r.get("closes_on") else None,
                envelope_eur=r.get("envelope_eur"),
                quota=r.get("quota"),
            )
            for r in data.get("rounds") or ()
        ),
        source_url=data.get("source_url"),
        source=data.get("source") or "",
    )


def plan_to_dict(plan: FinancingPlan) -> dict[str, object]:
    return {
        "base_eur": plan.base_eur,
        "need_eur": plan.need_eur,
        "cap_pct": plan.cap_pct,
        "cap_eur": plan.cap_eur,
        "lines": [
            {
                "scheme_id": line.scheme_id,
                "aid_type": line.aid_type,
                "amount_eur": line.amount_eur,
                "rate_pct_of_base": line.rate_pct_of_base,
                "grant_equivalent_eur": line.grant_equivalent_eur,
            }
            for line in plan.lines
        ],
        "total_eur": plan.total_eur,
        "grant_equivalent_eur": plan.grant_equivalent_eur,
        "covered_pct_of_need": plan.covered_pct_of_need,
        "remaining_need_eur": plan.remaining_need_eur,
        "notes": list(plan.notes),
    }


def _values(source: object, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(source, name) for name in names}


# The projections' rows have the domain's fields, column for column (and a project's
# plan, which is matching's: `save_plan` writes it).
_PROJECT_FIELDS = tuple(f.name for f in fields(FundingProject))
_SITE_FIELDS = tuple(f.name for f in fields(FundingSite))
_APPLICATION_FIELDS = tuple(f.name for f in fields(Application))


def project_of(row: FundingProjectRow) -> FundingProject:
    return FundingProject(**_values(row, _PROJECT_FIELDS))


def project_row(project: FundingProject) -> FundingProjectRow:
    return FundingProjectRow(**_values(project, _PROJECT_FIELDS), plan=None)


def site_of(row: FundingSiteRow) -> FundingSite:
    return FundingSite(**_values(row, _SITE_FIELDS))


def site_row(site: FundingSite) -> FundingSiteRow:
    return FundingSiteRow(**_values(site, _SITE_FIELDS))


def match_of(row: MatchRow) -> ProjectMatch:
    return ProjectMatch(
        project_id=row.project_id,
        scheme_id=row.scheme_id,
        eligible=row.eligible,
        rank=row.rank,
        score=row.score,
        planned_amount_eur=row.planned_amount_eur,
        criteria=tuple(CriterionResult.model_validate(c) for c in row.criteria),
        published=row.published,
    )


def _write_match(row: MatchRow, match: ProjectMatch) -> None:
    row.eligible, row.rank, row.score = match.eligible, match.rank, match.score
    row.planned_amount_eur = match.planned_amount_eur
    row.criteria = [c.model_dump() for c in match.criteria]
    row.published = match.published


def application_of(row: ApplicationRow) -> Application:
    return Application(**_values(row, _APPLICATION_FIELDS))


# --- the catalogue cache -----------------------------------------------------------------


class CatalogueCache:
    """All schemes, parsed once and reused while the catalogue's fingerprint (count and
    last change) stays the same: matching a project must not parse 10,000 rows."""

    def __init__(self) -> None:
        self._fingerprint: tuple[int, datetime | None, int] | None = None
        self._schemes = IndexedCatalogue()

    async def schemes(self, session: AsyncSession) -> IndexedCatalogue:
        fingerprint = tuple(
            (
                await session.exec(
                    sa.select(  # type: ignore[call-overload]
                        sa.func.count(),
                        sa.func.max(SchemeRow.updated_at),
                        sa.func.sum(SchemeRow.version),
                    )
                )
            ).one()
        )
        if fingerprint != self._fingerprint:
            rows = (await session.exec(select(SchemeRow).order_by(SchemeRow.id))).all()
            # Indexed once per catalogue change: matching examines only what can apply.
            self._schemes = IndexedCatalogue(scheme_from_dict(dict(r.data)) for r in rows)
            self._fingerprint = (int(fingerprint[0]), fingerprint[1], int(fingerprint[2] or 0))
        return self._schemes


# --- repositories ------------------------------------------------------------------------


class SchemeRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, scheme_id: str) -> Scheme | None: ...

    @abc.abstractmethod
    async def upsert(self, scheme: Scheme) -> bool:
        """Store the scheme; True when it is new or changed."""

    @abc.abstractmethod
    async def all(self) -> IndexedCatalogue:
        """The whole catalogue, by id, indexed for matching."""


class CallRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, call_id: str) -> Call | None: ...

    @abc.abstractmethod
    async def save(self, call: Call) -> None: ...

    @abc.abstractmethod
    async def save_result(self, result: RoundResult) -> None:
        """Store a round's result (replacing an earlier one of the same round)."""


class ProjectRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, project_id: uuid.UUID) -> FundingProject | None: ...

    @abc.abstractmethod
    async def upsert_newer(self, project: FundingProject) -> bool:
        """Store the project if its version is newer than the stored one; False when it
        is a replay or an older version (nothing stored)."""

    @abc.abstractmethod
    async def in_stages(self, stages: Collection[str]) -> list[FundingProject]: ...

    @abc.abstractmethod
    async def save_plan(self, project_id: uuid.UUID, plan: FinancingPlan | None) -> None: ...


class SiteRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, site_id: str) -> FundingSite | None: ...

    @abc.abstractmethod
    async def upsert_newer(self, site: FundingSite) -> bool:
        """As `ProjectRepository.upsert_newer`."""


class MatchRepository(abc.ABC):
    @abc.abstractmethod
    async def of_project(self, project_id: uuid.UUID) -> list[ProjectMatch]:
        """Every stored match of the project, eligible or withdrawn."""

    @abc.abstractmethod
    async def get(self, project_id: uuid.UUID, scheme_id: str) -> ProjectMatch | None: ...

    @abc.abstractmethod
    def add(self, match: ProjectMatch) -> None: ...

    @abc.abstractmethod
    async def save(self, match: ProjectMatch) -> None:
        """Write back a match this repository handed out."""


class ApplicationRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, application_id: uuid.UUID) -> Application | None:
        """The application, locked until commit: two decisions on it are serialized."""

    @abc.abstractmethod
    def add(self, application: Application) -> None: ...

    @abc.abstractmethod
    async def save(self, application: Application) -> None:
        """Write back an application this repository handed out."""


class SqlSchemes(SchemeRepository):
    def __init__(self, session: AsyncSession, cache: CatalogueCache) -> None:
        self._session = session
        self._cache = cache

    async def get(self, scheme_id: str) -> Scheme | None:
        row = await self._session.get(SchemeRow, scheme_id)
        return None if row is None else scheme_from_dict(dict(row.data))

    async def upsert(self, scheme: Scheme) -> bool:
        return await upsert_scheme(self._session, scheme)

    async def all(self) -> IndexedCatalogue:
        # Schemes upserted in this transaction count: the cache's fingerprint sees them.
        await self._session.flush()
        return await self._cache.schemes(self._session)


class SqlCalls(CallRepository):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, call_id: str) -> Call | None:
        row = await self._session.get(CallRow, call_id)
        return None if row is None else call_of(row)

    async def save(self, call: Call) -> None:
        row = await self._session.get(CallRow, call.id)
        if row is None:
            self._session.add(
                CallRow(id=call.id, scheme_id=call.scheme_id, name=call.name, data=call_data(call))
            )
        else:
            row.name, row.data = call.name, call_data(call)

    async def save_result(self, result: RoundResult) -> None:
        row = await self._session.get(SelectionRoundRow, (result.call_id, result.round))
        if row is None:
            row = SelectionRoundRow(
                call_id=result.call_id,
                round=result.round,
                decided_on=result.decided_on,
                applications=result.applications,
                selected=result.selected,
            )
            self._session.add(row)
        row.decided_on, row.applications = result.decided_on, result.applications
        row.selected, row.per_territory = result.selected, dict(result.per_territory)


class SqlProjects(ProjectRepository):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._rows: dict[uuid.UUID, FundingProjectRow] = {}

    async def get(self, project_id: uuid.UUID) -> FundingProject | None:
        row = await self._session.get(FundingProjectRow, project_id)
        if row is None:
            return None
        self._rows[project_id] = row
        return project_of(row)

    async def upsert_newer(self, project: FundingProject) -> bool:
        stored = await upsert_newer(self._session, project_row(project), lock=True)
        if stored is None:
            return False
        self._rows[project.project_id] = stored
        return True

    async def in_stages(self, stages: Collection[str]) -> list[FundingProject]:
        query = select(FundingProjectRow).where(col(FundingProjectRow.stage).in_(list(stages)))
        rows = (await self._session.exec(query)).all()
        self._rows.update((r.project_id, r) for r in rows)
        return [project_of(r) for r in rows]

    async def save_plan(self, project_id: uuid.UUID, plan: FinancingPlan | None) -> None:
        row = self._rows.get(project_id) or await self._session.get(FundingProjectRow, project_id)
        if row is None:
            raise LookupError(f"no project {project_id} to plan")
        row.plan = None if plan is None else plan_to_dict(plan)


class SqlSites(SiteRepository):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, site_id: str) -> FundingSite | None:
        row = await self._session.get(FundingSiteRow, site_id)
        return None if row is None else site_of(row)

    async def upsert_newer(self, site: FundingSite) -> bool:
        return await upsert_newer(self._session, site_row(site)) is not None


class SqlMatches(MatchRepository):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._rows: dict[tuple[uuid.UUID, str], MatchRow] = {}

    async def of_project(self, project_id: uuid.UUID) -> list[ProjectMatch]:
        query = select(MatchRow).where(MatchRow.project_id == project_id)
        rows = (await self._session.exec(query)).all()
        self._rows.update(((r.project_id, r.scheme_id), r) for r in rows)
        return [match_of(r) for r in rows]

    async def get(self, project_id: uuid.UUID, scheme_id: str) -> ProjectMatch | None:
        row = await self._session.get(MatchRow, (project_id, scheme_id))
        if row is None:
            return None
        self._rows[(project_id, scheme_id)] = row
        return match_of(row)

    def add(self, match: ProjectMatch) -> None:
        # Every column given: a defaulted one costs SQLModel a signature inspection of its
        # default factory, per row (a rematch adds hundreds).
        row = MatchRow(
            project_id=match.project_id,
            scheme_id=match.scheme_id,
            eligible=match.eligible,
            rank=match.rank,
            score=match.score,
            planned_amount_eur=match.planned_amount_eur,
            criteria=[c.model_dump() for c in match.criteria],
            published=match.published,
            updated_at=utcnow(),
        )
        self._session.add(row)
        self._rows[(match.project_id, match.scheme_id)] = row

    async def save(self, match: ProjectMatch) -> None:
        row = self._rows[(match.project_id, match.scheme_id)]
        _write_match(row, match)
        row.updated_at = utcnow()


class SqlApplications(ApplicationRepository):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._rows: dict[uuid.UUID, ApplicationRow] = {}

    async def get(self, application_id: uuid.UUID) -> Application | None:
        row = await self._session.get(ApplicationRow, application_id, with_for_update=True)
        if row is None:
            return None
        self._rows[application_id] = row
        return application_of(row)

    def add(self, application: Application) -> None:
        row = ApplicationRow(**_values(application, _APPLICATION_FIELDS))
        self._session.add(row)
        self._rows[application.id] = row

    async def save(self, application: Application) -> None:
        row = self._rows[application.id]
        for name, value in _values(application, _APPLICATION_FIELDS).items():
            setattr(row, name, value)


#: the lock that orders the funder feed's appends (see `SqlFunderFeed.append`)
FUNDER_FEED_LOCK = "funding.funder_feed"


class SqlFunderFeed:
    """The funders' HTTP feed: the funder topic's events, each with its sequence number.

    Readers resume after the last number they saw, so a number must never become visible
    after a greater one. PostgreSQL hands out serial numbers at insert, not at commit: two
    transactions committing in the opposite order would let a reader see 8 before 7, then
    skip 7. So appenders take a transaction lock first — the numbers are then given in
    commit order — and take it last, after every other write of the transaction is
    flushed: the lock is held only for the inserts and the commit (on SQLite, the flush
    has taken the write lock already)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, entries: Sequence[tuple[Envelope[EventPayload], str | None]]) -> None:
        """The events (with their project's region) in the order given."""
        if not entries:
            return
        await self._session.flush()
        await lock_for_transaction(self._session, FUNDER_FEED_LOCK)
        for envelope, region in entries:
            self._session.add(
                FunderFeedEntryRow(
                    event_id=envelope.id,
                    event_type=envelope.type,
                    source=envelope.source,
                    subject=envelope.subject,
                    time=envelope.time,
                    project_id=uuid.UUID(str(envelope.payload.key())),
                    region=region,
                    payload=envelope.value().decode(),
                )
            )


def webhook_of(row: FunderWebhookRow) -> Webhook:
    return Webhook(
        id=row.id,
        owner=row.owner,
        url=row.url,
        secret=row.secret,
        regions=None if row.regions is None else frozenset(row.regions),
        created_at=row.created_at,
        delivered_seq=row.delivered_seq,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
    )


class SqlWebhooks:
    """Funders' webhook subscriptions (the delivery worker moves their cursors)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, webhook_id: uuid.UUID) -> Webhook | None:
        row = await self._session.get(FunderWebhookRow, webhook_id)
        return None if row is None else webhook_of(row)

    def add(self, webhook: Webhook) -> None:
        self._session.add(
            FunderWebhookRow(
                id=webhook.id,
                owner=webhook.owner,
                url=webhook.url,
                secret=webhook.secret,
                regions=None if webhook.regions is None else sorted(webhook.regions),
                created_at=webhook.created_at,
                delivered_seq=webhook.delivered_seq,
            )
        )

    async def delete(self, webhook_id: uuid.UUID) -> None:
        row = await self._session.get(FunderWebhookRow, webhook_id)
        if row is not None:
            await self._session.delete(row)

    async def feed_end(self) -> int:
        """The feed's last sequence number now (0 when empty): a new subscription's start."""
        last = (await self._session.exec(select(sa.func.max(FunderFeedEntryRow.seq)))).one()
        return int(last or 0)
