"""The campaigns service's unit of work: the shared outbox-writing base plus its
repositories."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel.ext.asyncio.session import AsyncSession

from services.campaigns.adapters.repository import CampaignRepository, SiteRepository
from shared.messaging.unit_of_work import RecordsEvents, SqlUnitOfWork


class CampaignsUnitOfWork(SqlUnitOfWork):
    campaigns: CampaignRepository
    sites: SiteRepository

    def _start(self, session: AsyncSession) -> None:
        self.campaigns = CampaignRepository(session)
        self.sites = SiteRepository(session)

    def seen_aggregates(self) -> Iterable[RecordsEvents]:
        return self.campaigns.seen

    async def _before_commit(self) -> None:
        self.campaigns.sync()
