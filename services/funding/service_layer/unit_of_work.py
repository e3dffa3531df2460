"""The funding service's unit of work: its repositories over one session. Its writes are
explicit (repositories' `add`/`save` and published events), so it tracks no aggregates.

Commands and handlers ask only for `UnitOfWork`, what both the SQL unit of work and the
service-layer tests' fake offer."""

from __future__ import annotations

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
    SqlMatches,
    SqlProjects,
    SqlSchemes,
    SqlSites,
)
from shared.db import SessionFactory
from shared.events.envelope import EventPayload
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
