"""The composition root: builds the registry's dependencies from its settings, once, at
start-up (never at import), and hands them to the entrypoints and to the tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from services.site_registry.adapters import reference_data
from services.site_registry.service_layer import batch_jobs
from services.site_registry.service_layer.commands import Nomenclatures
from services.site_registry.service_layer.unit_of_work import SiteRegistryUnitOfWork
from services.site_registry.settings import SiteRegistrySettings
from shared.clock import Clock, system_now
from shared.messaging.relay import AfterPublish
from shared.runtime import ServiceRuntime

SERVICE = "site_registry"
MIGRATIONS = Path(__file__).parent / "migrations"


class SiteRegistry(ServiceRuntime):
    settings: SiteRegistrySettings

    def __init__(
        self,
        settings: SiteRegistrySettings,
        *,
        now: Callable[[], datetime] = system_now,
        after_publish: AfterPublish | None = None,
    ) -> None:
        super().__init__(SERVICE, settings, MIGRATIONS, after_publish=after_publish)
        self.clock = Clock(now)
        self.refs = Nomenclatures(
            naf=reference_data.load_naf(), bands=reference_data.load_headcount_bands()
        )

    def uow(self) -> SiteRegistryUnitOfWork:
        return SiteRegistryUnitOfWork(
            self.session_factory, source=SERVICE, on_commit_with_events=self.relay.notify
        )

    async def load_reference_data(self) -> dict[str, int]:
        """The packaged Territoires d'industrie, communes and their links."""
        return await batch_jobs.load_reference_data(
            self.uow,
            reference_data.load_territories(),
            reference_data.load_communes(),
            reference_data.load_territory_communes(),
        )


def bootstrap(
    settings: SiteRegistrySettings | None = None,
    *,
    now: Callable[[], datetime] = system_now,
    after_publish: AfterPublish | None = None,
) -> SiteRegistry:
    return SiteRegistry(settings or SiteRegistrySettings(), now=now, after_publish=after_publish)
