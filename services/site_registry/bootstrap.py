"""The composition root: builds the registry's dependencies from its settings, once, at
start-up (never at import), and hands them to the entrypoints and to the tests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.site_registry.adapters import reference_data
from services.site_registry.service_layer.services import Nomenclatures
from services.site_registry.service_layer.unit_of_work import SiteRegistryUnitOfWork
from services.site_registry.settings import SiteRegistrySettings
from shared import migrations
from shared.auth import AuthConfig
from shared.db import SessionFactory, create_engine, create_session_factory
from shared.events.catalogue import topics_consumed_by, topics_owned_by
from shared.messaging.kafka import ensure_topics, make_producer
from shared.messaging.relay import AfterPublish, OutboxRelay

SERVICE = "site_registry"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class SiteRegistry:
    settings: SiteRegistrySettings
    engine: AsyncEngine
    session_factory: SessionFactory
    relay: OutboxRelay
    refs: Nomenclatures
    auth: AuthConfig

    def uow(self) -> SiteRegistryUnitOfWork:
        return SiteRegistryUnitOfWork(
            self.session_factory, source=SERVICE, on_commit_with_events=self.relay.notify
        )

    def producer(self) -> AIOKafkaProducer:
        return make_producer(self.settings.kafka_bootstrap_servers, self.settings.client_id())

    async def migrate(self) -> None:
        await migrations.upgrade(MIGRATIONS, self.settings.resolved_database_url())

    async def ensure_topics(self) -> list[str]:
        topics = {*topics_owned_by(SERVICE), *topics_consumed_by(SERVICE)}
        return await ensure_topics(
            self.settings.kafka_bootstrap_servers,
            sorted(topics, key=lambda t: t.name),
            prefix=self.settings.kafka_topic_prefix,
            replication_factor=self.settings.kafka_replication_factor,
        )

    async def load_reference_data(self) -> dict[str, int]:
        from services.site_registry.service_layer.services import load_reference_data

        return await load_reference_data(
            self.uow,
            reference_data.load_territories(),
            reference_data.load_communes(),
            reference_data.load_territory_communes(),
        )

    async def aclose(self) -> None:
        await self.relay.stop()
        await self.engine.dispose()


def bootstrap(
    settings: SiteRegistrySettings | None = None, *, after_publish: AfterPublish | None = None
) -> SiteRegistry:
    settings = settings or SiteRegistrySettings()
    engine = create_engine(settings.resolved_database_url())
    session_factory = create_session_factory(engine)
    relay = OutboxRelay(
        engine=engine,
        session_factory=session_factory,
        producer_factory=partial(
            make_producer, settings.kafka_bootstrap_servers, settings.client_id() + "-relay"
        ),
        service=SERVICE,
        topic_prefix=settings.kafka_topic_prefix,
        batch_size=settings.relay_batch_size,
        poll_interval_s=settings.relay_poll_interval_s,
        after_publish=after_publish,
    )
    return SiteRegistry(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        relay=relay,
        refs=Nomenclatures(
            naf=reference_data.load_naf(), bands=reference_data.load_headcount_bands()
        ),
        auth=AuthConfig(
            settings.jwt_secret.get_secret_value(),
            algorithm=settings.jwt_algorithm,
            audience=settings.jwt_audience,
        ),
    )
