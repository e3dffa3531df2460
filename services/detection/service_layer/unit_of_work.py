"""The detection service's unit of work."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel.ext.asyncio.session import AsyncSession

from services.detection.adapters.repository import (
    ProjectRepository,
    ShockProjection,
    SiteProjection,
)
from shared.messaging.unit_of_work import RecordsEvents, SqlUnitOfWork


class DetectionUnitOfWork(SqlUnitOfWork):
    projects: ProjectRepository
    sites: SiteProjection
    shocks: ShockProjection

    def _start(self, session: AsyncSession) -> None:
        self.projects = ProjectRepository(session)
        self.sites = SiteProjection(session)
        self.shocks = ShockProjection(session)

    def seen_aggregates(self) -> Iterable[RecordsEvents]:
        return self.projects.seen

    async def _before_commit(self) -> None:
        await self.projects.sync()
