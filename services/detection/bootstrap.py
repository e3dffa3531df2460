"""The detection service's composition root: runtime, the main consumer (sites, surveys,
funding decisions), the ledger consumer (its own projects topic and the closure
announcements) and the ledger rebuild."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from services.detection.adapters.ledger_projection import batch_of_envelopes
from services.detection.service_layer.handlers import LedgerHandlers, MainHandlers
from services.detection.service_layer.unit_of_work import DetectionUnitOfWork
from services.detection.settings import DetectionSettings
from shared.clock import Clock, system_now
from shared.events.catalogue import FUNDER_FEED, PROJECTS, SITES, SURVEYS, event_registry
from shared.messaging.relay import AfterPublish
from shared.messaging.replay import ReplayReport, replay
from shared.runtime import ServiceRuntime, Worker

SERVICE = "detection"
MIGRATIONS = Path(__file__).parent / "migrations"


class Detection(ServiceRuntime):
    settings: DetectionSettings

    def __init__(
        self,
        settings: DetectionSettings,
        *,
        now: Callable[[], datetime] = system_now,
        after_publish: AfterPublish | None = None,
    ) -> None:
        super().__init__(SERVICE, settings, MIGRATIONS, after_publish=after_publish)
        self.clock = Clock(now)
        self.consumer = self.consumer_runner(
            "main", [SITES, SURVEYS, FUNDER_FEED], MainHandlers(self.clock).table(), self.uow
        )
        self.ledger_consumer = self.consumer_runner(
            "ledger", [PROJECTS, SITES], LedgerHandlers().table(), self.uow
        )

    def uow(self) -> DetectionUnitOfWork:
        return DetectionUnitOfWork(
            self.session_factory, source=SERVICE, on_commit_with_events=self.relay.notify
        )

    def workers(self) -> Sequence[Worker]:
        return (self.relay, self.consumer, self.ledger_consumer)

    async def rebuild_ledger(
        self, *, batch_size: int = 2000, workers: int | None = None
    ) -> ReplayReport:
        """Drop the ledger's rows and rebuild them from the topics, then count every
        shock from them, in ONE transaction: readers see the old ledger until the new one
        commits, never a partial one. Safe while the live ledger consumer runs: it waits
        for the rebuild (`LedgerProjection.reset`), then applies its events on top of the
        rebuilt rows with idempotent, version-guarded upserts."""
        prefix = self.settings.kafka_topic_prefix
        async with self.uow() as uow:
            await uow.ledger.reset(self.ledger_consumer.name)

            report = await replay(
                self.settings.kafka_access(),
                [PROJECTS.physical(prefix), SITES.physical(prefix)],
                event_registry([PROJECTS, SITES]),
                uow.ledger.write,
                fold=batch_of_envelopes,
                batch_size=batch_size,
                workers=self.settings.rebuild_workers if workers is None else workers,
            )
            await uow.ledger.recount()
            await uow.commit()
        return report


def bootstrap(
    settings: DetectionSettings | None = None,
    *,
    now: Callable[[], datetime] = system_now,
    after_publish: AfterPublish | None = None,
) -> Detection:
    return Detection(settings or DetectionSettings(), now=now, after_publish=after_publish)
