"""The funding service's unit of work: its repositories over one session. Its writes are
explicit (repositories' `add`/`save` and published events), so it tracks no aggregates.

Commands and handlers ask only for `UnitOfWork`, what both the SQL unit of work and the
service-layer tests' fake offer."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from services.funding.adapters.repository import (
    ApplicationRepository,
    CallRepository,
    CatalogueCache,
    MatchRepository,
    ProjectRepository,
    SchemeRepository,
    SiteRepository,
    SqlApplications,
    SqlCalls,
    SqlFunderFeed,
    SqlMatches,
    SqlProjects,
    SqlSchemes,
    SqlSites,
    SqlWebhooks,
)
from services.funding.domain.projects import region_of
from shared.db import SessionFactory
from shared.events.catalogue import FUNDER_FEED, topic_of
from shared.events.envelope import Envelope, EventPayload
from shared.messaging.unit_of_work import SqlUnitOfWork


class UnitOfWork(Protocol):
    @property
    def schemes(self) -> SchemeRepository: ...

    @property
    def calls(self) -> CallRepository: ...

    @property
    def projects(self) -> ProjectRepository: ...

    @property
    def sites(self) -> SiteRepository: ...

    @property
    def matches(self) -> MatchRepository: ...

    @property
    def applications(self) -> ApplicationRepository: ...

    def publish(self, event: EventPayload) -> None:
        """Stage an event: it is published if and only if the unit of work commits."""


class FundingUnitOfWork(SqlUnitOfWork):
    schemes: SchemeRepository
    calls: CallRepository
    projects: ProjectRepository
    sites: SiteRepository
    matches: MatchRepository
    applications: ApplicationRepository
    funder_feed: SqlFunderFeed
    webhooks: SqlWebhooks

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        source: str,
        catalogue: CatalogueCache,
        on_commit_with_events: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            session_factory, source=source, on_commit_with_events=on_commit_with_events
        )
        self._catalogue = catalogue

    def _start(self, session: AsyncSession) -> None:
        self.schemes = SqlSchemes(session, self._catalogue)
        self.calls = SqlCalls(session)
        self.projects = SqlProjects(session)
        self.sites = SqlSites(session)
        self.matches = SqlMatches(session)
        self.applications = SqlApplications(session)
        self.funder_feed = SqlFunderFeed(session)
        self.webhooks = SqlWebhooks(session)

    async def _with_outbox(self, envelopes: list[Envelope[EventPayload]]) -> None:
        """The funder topic's events also go to the funders' HTTP feed, in the same
        transaction as their outbox rows: the feed holds an event if and only if the
        topic will, under the same event id."""
        entries = []
        for envelope in envelopes:
            if topic_of(envelope.payload) is FUNDER_FEED:
                entries.append((envelope, await self._region(envelope.payload)))
        await self.funder_feed.append(entries)

    async def _region(self, event: EventPayload) -> str | None:
        """The region of the event's project: matches carry its territory, decisions are
        about a project the funding service knows."""
        territory = getattr(event, "territory_id", None)
        if territory is None:
            project = await self.projects.get(uuid.UUID(event.key()))
            territory = None if project is None else project.territory_id
        return None if territory is None else region_of(territory)
