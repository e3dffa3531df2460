"""The site registry's unit of work: the shared outbox-writing base plus its repositories."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel.ext.asyncio.session import AsyncSession

from services.site_registry.adapters.repository import (
    ClosureShockRepository,
    ReferenceTables,
    SiteRepository,
    TerritoryMap,
)
from shared.messaging.unit_of_work import RecordsEvents, SqlUnitOfWork


class SiteRegistryUnitOfWork(SqlUnitOfWork):
    sites: SiteRepository
    shocks: ClosureShockRepository
    territories: TerritoryMap
    reference: ReferenceTables

    def _start(self, session: AsyncSession) -> None:
        self.sites = SiteRepository(session)
        self.shocks = ClosureShockRepository(session)
        self.territories = TerritoryMap(session)
        self.reference = ReferenceTables(session)

    def seen_aggregates(self) -> Iterable[RecordsEvents]:
        return self.sites.seen

    async def _before_commit(self) -> None:
        self.sites.sync()
