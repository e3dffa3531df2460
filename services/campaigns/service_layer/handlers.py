"""Reactions to other services' events: the site projection, and a campaign launched once
per closure shock. Each handler runs inside the consumer's transaction (inbox row + effect),
so a redelivered event changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from services.campaigns.adapters.orm import CampaignSiteRow
from services.campaigns.adapters.repository import target_of
from services.campaigns.domain.calendar import next_working_day
from services.campaigns.domain.model import PARIS, Campaign
from services.campaigns.service_layer.unit_of_work import CampaignsUnitOfWork
from shared.events import site_registry as sr
from shared.events.envelope import Envelope
from shared.logging import get_logger

log = get_logger(__name__)

_LATEST_START = date(9000, 1, 1)


@dataclass(frozen=True)
class LaunchDefaults:
    budget_days: float
    cost_per_visit_days: float
    daily_cap: int
    period_weeks: int
    roster: tuple[str, ...]


@dataclass(frozen=True)
class Clock:
    now: Callable[[], datetime]

    def today(self) -> date:
        return self.now().astimezone(PARIS).date()


def _row(state: sr.SiteState) -> CampaignSiteRow:
    return CampaignSiteRow(
        site_id=state.site_id,
        siren=state.siren,
        name=state.name,
        naf_code=state.naf_code,
        naf_section=state.naf_section,
        headcount_band=state.headcount_band,
        commune_insee=state.commune_insee,
        territory_ids=list(state.territory_ids),
        lon=state.lon,
        lat=state.lat,
        status=state.status,
        version=state.version,
    )


class SiteEventHandlers:
    def __init__(self, defaults: LaunchDefaults, clock: Clock) -> None:
        self._defaults = defaults
        self._clock = clock

    def table(self) -> dict[str, Callable[[CampaignsUnitOfWork, Envelope[Any]], Any]]:
        return {
            sr.SiteRegistered.event_type: self.site_changed,
            sr.SiteUpdated.event_type: self.site_changed,
            sr.SiteClosed.event_type: self.site_closed,
            sr.ClosureAnnounced.event_type: self.closure_announced,
        }

    async def site_changed(self, uow: CampaignsUnitOfWork, env: Envelope[sr.SiteState]) -> None:
        state = env.payload
        previous = await uow.sites.get(state.site_id)
        was_active = previous is not None and previous.status == "active"
        row = _row(state)
        if not await uow.sites.upsert(row):
            return  # an older version than we hold: nothing to apply
        campaigns = await uow.campaigns.active_in_territories(state.territory_ids)
        for campaign in campaigns:
            if state.status == "closed":
                await self._drop(campaign, state.site_id, "site closed")
            elif state.status == "active" and not was_active:
                campaign.add_targets([target_of(row)], today=self._clock.today(), manual=False)
            else:
                campaign.refresh_target(target_of(row))

    async def site_closed(self, uow: CampaignsUnitOfWork, env: Envelope[sr.SiteClosed]) -> None:
        event = env.payload
        row = await uow.sites.get(event.site_id)
        if row is None or row.version >= event.version:
            return
        row.status = "closed"
        row.version = event.version
        for campaign in await uow.campaigns.active_in_territories(event.territory_ids):
            await self._drop(campaign, event.site_id, "site closed")

    async def _drop(self, campaign: Campaign, site_id: str, reason: str) -> None:
        target = campaign.targets.get(site_id)
        if target is not None and target.active:
            campaign.remove_target(site_id, today=self._clock.today(), manual=False, reason=reason)

    async def closure_announced(
        self, uow: CampaignsUnitOfWork, env: Envelope[sr.ClosureAnnounced]
    ) -> None:
        shock = env.payload
        row = await uow.sites.get(shock.site_id)
        if row is not None and row.version < shock.version:
            row.status = "closure_announced"
            row.version = shock.version
        # The closing site leaves the plans of campaigns already running in its territory.
        for campaign in await uow.campaigns.active_in_territories(shock.territory_ids):
            await self._drop(campaign, shock.site_id, "closure announced")
        if await uow.campaigns.by_shock(shock.shock_id) is not None:
            log.info("campaign already launched for this shock", shock_id=str(shock.shock_id))
            return
        if not shock.territory_ids:
            log.warning("closure shock outside every territory: no campaign", site=shock.site_id)
            return
        territory = shock.territory_ids[0]
        sites = [
            target_of(s)
            for s in await uow.sites.active_in_territory(territory)
            if s.site_id != shock.site_id
        ]
        today = self._clock.today()
        # The registry refuses announcements more than a year ahead; an older event from
        # before that rule still launches a campaign rather than overflowing the calendar.
        starts_on = next_working_day(min(max(shock.announced_on, today), _LATEST_START))
        d = self._defaults
        campaign = Campaign.launch(
            shock_id=shock.shock_id,
            territory_id=territory,
            closing_site_id=shock.site_id,
            closing_naf_code=shock.naf_code,
            sites=sites,
            roster=list(d.roster),
            budget_days=d.budget_days,
            cost_per_visit_days=d.cost_per_visit_days,
            daily_cap=d.daily_cap,
            starts_on=starts_on,
            ends_on=starts_on + timedelta(weeks=d.period_weeks),
            now=self._clock.now(),
        )
        uow.campaigns.add(campaign)
        log.info(
            "campaign launched",
            campaign_id=str(campaign.id),
            territory=territory,
            targets=len(campaign.targets),
        )
