"""The campaigns service's fake unit of work: in-memory repositories offering what the
real ones (`services/campaigns/adapters/repository.py`) offer to commands and handlers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from services.campaigns.domain.model import Campaign, CampaignStatus, Site
from shared.messaging.unit_of_work import RecordsEvents
from shared.projection import is_newer
from tests.support.fake_uow import FakeUnitOfWork


class FakeSiteRepository:
    def __init__(self) -> None:
        self.sites: dict[str, Site] = {}
        self.locked: list[tuple[tuple[str, ...], bool]] = []  # (territories, launching)

    async def get(self, site_id: str) -> Site | None:
        return self.sites.get(site_id)

    async def upsert(self, site: Site) -> bool:
        if not is_newer(self.sites.get(site.site_id), site.version):
            return False
        self.sites[site.site_id] = site
        return True

    async def lock_territories(self, territory_ids: Iterable[str], *, launching: bool) -> None:
        self.locked.append((tuple(sorted(set(territory_ids))), launching))

    async def active_in_territory(self, territory_id: str) -> list[Site]:
        return sorted(
            (
                s
                for s in self.sites.values()
                if territory_id in s.territory_ids and s.status == "active"
            ),
            key=lambda s: s.site_id,
        )


class FakeCampaignRepository:
    def __init__(self) -> None:
        self.campaigns: dict[uuid.UUID, Campaign] = {}

    @property
    def seen(self) -> list[Campaign]:
        return list(self.campaigns.values())

    async def get(self, campaign_id: uuid.UUID, *, for_update: bool = True) -> Campaign | None:
        return self.campaigns.get(campaign_id)

    async def by_shock(self, shock_id: uuid.UUID) -> Campaign | None:
        return next((c for c in self.campaigns.values() if c.shock_id == shock_id), None)

    async def active_in_territories(self, territory_ids: Sequence[str]) -> list[Campaign]:
        return sorted(
            (
                c
                for c in self.campaigns.values()
                if c.territory_id in territory_ids and c.status is CampaignStatus.ACTIVE
            ),
            key=lambda c: c.launched_at,
        )

    async def campaign_of_visit(self, visit_id: uuid.UUID) -> uuid.UUID | None:
        for campaign in self.campaigns.values():
            current = {v.id for v in campaign.visits.values()}
            if visit_id in current or visit_id in campaign.past_visits:
                return campaign.id
        return None

    def add(self, campaign: Campaign) -> None:
        self.campaigns[campaign.id] = campaign


class FakeCampaignsUnitOfWork(FakeUnitOfWork):
    source = "campaigns"

    def __init__(self) -> None:
        super().__init__()
        self.campaigns = FakeCampaignRepository()
        self.sites = FakeSiteRepository()

    def seen_aggregates(self) -> Iterable[RecordsEvents]:
        return self.campaigns.seen
