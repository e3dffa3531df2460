"""Reactions to other services' events: the site projection, and a campaign launched once
per closure shock. Each handler runs inside the consumer's unit of work (inbox row +
effect) and never commits, so a redelivered event changes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from services.campaigns.domain.calendar import next_working_day
from services.campaigns.domain.model import Campaign, Site
from services.campaigns.service_layer.unit_of_work import CampaignsUnitOfWork
from shared.clock import Clock
from shared.events import site_registry as sr
from shared.events.envelope import Envelope
from shared.logging import get_logger
from shared.messaging.consumer import Handler

log = get_logger(__name__)

_LATEST_START = date(9000, 1, 1)


@dataclass(frozen=True)
class LaunchDefaults:
    budget_days: float
    cost_per_visit_days: float
    daily_cap: int
    period_weeks: int
    roster: tuple[str, ...]
    # Each territory's own consultants (the `sub` of their tokens); a territory without
    # one gets `roster`, the deployment's default. The crisis cell changes either.
    territory_rosters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def roster_of(self, territory_id: str) -> list[str]:
        return list(self.territory_rosters.get(territory_id, self.roster))


def site_of(state: sr.SiteState) -> Site:
    return Site(
        site_id=state.site_id,
        siren=state.siren,
        name=state.name,
        naf_code=state.naf_code,
        naf_section=state.naf_section,
        headcount_band=state.headcount_band,
        commune_insee=state.commune_insee,
        territory_ids=tuple(state.territory_ids),
        lon=state.lon,
        lat=state.lat,
        status=state.status,
        version=state.version,
    )


class SiteEventHandlers:
    def __init__(self, defaults: LaunchDefaults, clock: Clock) -> None:
        self._defaults = defaults
        self._clock = clock

    def table(self) -> dict[str, Handler[CampaignsUnitOfWork]]:
        return {
            sr.SiteRegistered.event_type: self.site_changed,
            sr.SiteUpdated.event_type: self.site_changed,
            sr.SiteClosed.event_type: self.site_closed,
            sr.ClosureAnnounced.event_type: self.closure_announced,
        }

    async def site_changed(self, uow: CampaignsUnitOfWork, env: Envelope[sr.SiteState]) -> None:
        site = site_of(env.payload)
        previous = await uow.sites.get(site.site_id)
        moved_from = previous.territory_ids if previous is not None else ()
        await uow.sites.lock_territories([*site.territory_ids, *moved_from], launching=False)
        was_active = previous is not None and previous.status == "active"
        if not await uow.sites.upsert(site):
            return  # an older version than we hold: nothing to apply
        for campaign in await uow.campaigns.active_in_territories(site.territory_ids):
            if site.status == "closed":
                self._drop(campaign, site.site_id, "site closed")
            elif site.status == "active" and not was_active:
                campaign.add_targets([site.target()], today=self._clock.today(), manual=False)
            else:
                campaign.refresh_target(site.target())

    async def site_closed(self, uow: CampaignsUnitOfWork, env: Envelope[sr.SiteClosed]) -> None:
        event = env.payload
        await uow.sites.lock_territories(event.territory_ids, launching=False)
        site = await uow.sites.get(event.site_id)
        if site is None or not await uow.sites.upsert(
            replace(site, status="closed", version=event.version)
        ):
            return
        for campaign in await uow.campaigns.active_in_territories(event.territory_ids):
            self._drop(campaign, event.site_id, "site closed")

    def _drop(self, campaign: Campaign, site_id: str, reason: str) -> None:
        target = campaign.targets.get(site_id)
        if target is not None and target.active:
            campaign.remove_target(site_id, today=self._clock.today(), manual=False, reason=reason)

    async def closure_announced(
        self, uow: CampaignsUnitOfWork, env: Envelope[sr.ClosureAnnounced]
    ) -> None:
        shock = env.payload
        await uow.sites.lock_territories(shock.territory_ids, launching=True)
        site = await uow.sites.get(shock.site_id)
        if site is not None:
            await uow.sites.upsert(replace(site, status="closure_announced", version=shock.version))
        # The closing site leaves the plans of campaigns already running in its territory.
        for campaign in await uow.campaigns.active_in_territories(shock.territory_ids):
            self._drop(campaign, shock.site_id, "closure announced")
        if await uow.campaigns.by_shock(shock.shock_id) is not None:
            log.info("campaign already launched for this shock", shock_id=str(shock.shock_id))
            return
        territory = shock.primary_territory_id
        if territory is None:
            log.warning("closure shock outside every territory: no campaign", site=shock.site_id)
            return
        sites = [
            s.target()
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
            roster=d.roster_of(territory),
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
