"""The detection service's unit of work."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel.ext.asyncio.session import AsyncSession

from services.detection.adapters.ledger_projection import LedgerProjection
from services.detection.adapters.repository import (
    ProjectRepository,
    ShockRepository,
    SiteProjection,
)
from shared.messaging.unit_of_work import RecordsEvents, SqlUnitOfWork


class DetectionUnitOfWork(SqlUnitOfWork):
    projects: ProjectRepository
    sites: SiteProjection
    shocks: ShockRepository
    ledger: LedgerProjection

    def _start(self, session: AsyncSession) -> None:
        self.projects = ProjectRepository(session)
        self.sites = SiteProjection(session)
        self.shocks = ShockRepository(session)
        self.ledger = LedgerProjection(session)

    def seen_aggregates(self) -> Iterable[RecordsEvents]:
        return self.projects.seen

    async def _before_commit(self) -> None:
        await self.projects.sync()
