"""The campaigns service's composition root: settings → runtime (engine, relay, producers),
the consumer of site events, the commands and their clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from services.campaigns.service_layer.handlers import LaunchDefaults, SiteEventHandlers
from services.campaigns.service_layer.unit_of_work import CampaignsUnitOfWork
from services.campaigns.settings import CampaignsSettings
from shared.clock import Clock, system_now
from shared.events.catalogue import SITES
from shared.messaging.relay import AfterPublish
from shared.runtime import ServiceRuntime, Worker

SERVICE = "campaigns"
MIGRATIONS = Path(__file__).parent / "migrations"


class Campaigns(ServiceRuntime):
    settings: CampaignsSettings

    def __init__(
        self,
        settings: CampaignsSettings,
        *,
        now: Callable[[], datetime] = system_now,
        after_publish: AfterPublish | None = None,
    ) -> None:
        super().__init__(SERVICE, settings, MIGRATIONS, after_publish=after_publish)
        self.clock = Clock(now)
        self.site_handlers = SiteEventHandlers(
            LaunchDefaults(
                budget_days=settings.default_budget_days,
                cost_per_visit_days=settings.default_cost_per_visit_days,
                daily_cap=settings.default_daily_cap,
                period_weeks=settings.default_period_weeks,
                roster=tuple(settings.default_roster),
                territory_rosters={t: tuple(r) for t, r in settings.territory_rosters.items()},
            ),
            self.clock,
        )
        self.consumer = self.consumer_runner("sites", [SITES], self.site_handlers.table(), self.uow)

    def uow(self) -> CampaignsUnitOfWork:
        return CampaignsUnitOfWork(
            self.session_factory, source=SERVICE, on_commit_with_events=self.relay.notify
        )

    def workers(self) -> Sequence[Worker]:
        return (self.relay, self.consumer)


def bootstrap(
    settings: CampaignsSettings | None = None,
    *,
    now: Callable[[], datetime] = system_now,
    after_publish: AfterPublish | None = None,
) -> Campaigns:
    return Campaigns(settings or CampaignsSettings(), now=now, after_publish=after_publish)
