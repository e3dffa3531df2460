"""The funding service's composition root: runtime, the catalogue cache and matcher, the
consumer of sites and projects, and the seed of real schemes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from services.funding.adapters.repository import CatalogueCache
from services.funding.domain.plan import IntensityCaps
from services.funding.service_layer import commands
from services.funding.service_layer.feed import FeedNotifier, StreamSettings
from services.funding.service_layer.handlers import Handlers
from services.funding.service_layer.matching import Matcher
from services.funding.service_layer.unit_of_work import FundingUnitOfWork
from services.funding.service_layer.webhooks import DeliverySettings, WebhookDelivery
from services.funding.settings import FundingSettings
from shared.clock import Clock, system_now
from shared.db import lock_for_transaction
from shared.events.catalogue import PROJECTS, SITES
from shared.messaging.relay import AfterPublish
from shared.runtime import ServiceRuntime, Worker

SERVICE = "funding"
MIGRATIONS = Path(__file__).parent / "migrations"


class Funding(ServiceRuntime):
    settings: FundingSettings

    def __init__(
        self,
        settings: FundingSettings,
        *,
        clock: Clock,
        after_publish: AfterPublish | None = None,
    ) -> None:
        super().__init__(SERVICE, settings, MIGRATIONS, after_publish=after_publish)
        self.clock = clock
        self.catalogue = CatalogueCache()
        self.matcher = Matcher(
            cache=self.catalogue,
            caps=IntensityCaps(),
            zones=dict(settings.zones),
            clock=clock,
            propose_top=settings.propose_top,
        )
        self.feed_notifier = FeedNotifier()
        self.feed_stream = StreamSettings(
            poll_interval_s=settings.funder_feed_poll_interval_s,
            heartbeat_s=settings.funder_feed_heartbeat_s,
            max_duration_s=settings.funder_feed_max_stream_s,
            batch=settings.funder_feed_batch,
        )
        self.webhooks = WebhookDelivery(
            self.engine,
            self.session_factory,
            self.feed_notifier,
            DeliverySettings(
                poll_interval_s=settings.webhook_poll_interval_s,
                timeout_s=settings.webhook_timeout_s,
                retry_base_s=settings.webhook_retry_base_s,
                retry_max_s=settings.webhook_retry_max_s,
                batch=settings.funder_feed_batch,
                lease_ttl_s=settings.relay_lease_ttl_s,
            ),
        )
        self.consumer = self.consumer_runner(
            "main", [SITES, PROJECTS], Handlers(self.matcher).table(), self.uow
        )

    def uow(self) -> FundingUnitOfWork:
        return FundingUnitOfWork(
            self.session_factory,
            source=SERVICE,
            catalogue=self.catalogue,
            on_commit_with_events=self._committed_events,
        )

    def _committed_events(self) -> None:
        """After a commit with events: the relay publishes them now, the funder feed's
        streams read what they may hold."""
        self.relay.notify()
        self.feed_notifier.notify()

    def workers(self) -> Sequence[Worker]:
        return (self.relay, self.consumer, self.webhooks)

    async def load_seed(self) -> int:
        """Upsert the curated real schemes (idempotent); re-match if anything changed."""
        from services.funding.adapters.seed import load_seed

        async with self.uow() as uow:
            # Two replicas starting together would insert the same schemes.
            await lock_for_transaction(uow.session, "funding.seed")
            changed = await commands.upsert_schemes(uow, load_seed(), self.matcher)
            await uow.commit()
        return changed


def bootstrap(
    settings: FundingSettings | None = None,
    *,
    now: Callable[[], datetime] = system_now,
    after_publish: AfterPublish | None = None,
) -> Funding:
    """The funding service; `now` is its clock's time (tests fix it)."""
    return Funding(settings or FundingSettings(), clock=Clock(now), after_publish=after_publish)
