"""Fixtures for integration tests of the site registry on the real broker and database."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import TypeVar

import pytest
from sqlalchemy import text

from services.campaigns.bootstrap import Campaigns
from services.campaigns.bootstrap import bootstrap as campaigns_bootstrap
from services.campaigns.settings import CampaignsSettings
from services.detection.bootstrap import Detection
from services.detection.bootstrap import bootstrap as detection_bootstrap
from services.detection.settings import DetectionSettings
from services.funding.bootstrap import Funding
from services.funding.bootstrap import bootstrap as funding_bootstrap
from services.funding.settings import FundingSettings
from services.site_registry.bootstrap import SiteRegistry, bootstrap
from services.site_registry.entrypoints.cli import demo_sites
from services.site_registry.service_layer import batch_jobs
from services.site_registry.settings import SiteRegistrySettings
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings
from tests.support.dsl import (
    FUNDING_TODAY,
    TODAY,
    FundingStack,
    Stack,
    open_funding_stack,
    open_stack,
)
from tests.support.infra import Broker, Database

TEST_SECRET = "integration-tests-secret-of-at-least-32-chars"
S = TypeVar("S", bound=ServiceRuntime)
T = TypeVar("T", bound=ServiceSettings)


def settings_for(
    cls: type[T], broker: Broker, database_url: str, prefix: str, **extra: object
) -> T:
    """A service's settings for a test: its own database, the session's broker, a
    per-test topic prefix, fast polling and retries."""
    return cls(
        environment="test",
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_topic_prefix=prefix,
        jwt_secret=TEST_SECRET,  # type: ignore[arg-type]
        relay_poll_interval_s=0.05,
        consumer_backoff_s=0.01,
        **extra,  # type: ignore[arg-type]
    )


def registry_settings(broker: Broker, database_url: str, prefix: str) -> SiteRegistrySettings:
    return settings_for(SiteRegistrySettings, broker, database_url, prefix)


@pytest.fixture
async def registry(
    broker: Broker, database_url: str, topic_prefix: str
) -> AsyncIterator[SiteRegistry]:
    reg = bootstrap(registry_settings(broker, database_url, topic_prefix))
    await reg.migrate()
    await reg.ensure_topics()
    await reg.load_reference_data()
    yield reg
    await reg.aclose()


async def create_effects_table(registry: SiteRegistry, table: str, *columns: str) -> None:
    """A table in the registry's database that test handlers write their effects to:
    a serial `n` (the order they were written in), `event_id`, `site_id`, then `columns`."""
    serial = (
        "INTEGER PRIMARY KEY AUTOINCREMENT"
        if registry.engine.dialect.name == "sqlite"
        else "SERIAL PRIMARY KEY"
    )
    extra = "".join(f", {c}" for c in columns)
    async with registry.engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE TABLE {table} (n {serial}, event_id TEXT NOT NULL,"
                f" site_id TEXT NOT NULL{extra})"
            )
        )


@pytest.fixture
async def effect_table(registry: SiteRegistry) -> SiteRegistry:
    """The registry, with a table the messaging tests' handlers write their effects to."""
    await create_effects_table(registry, "test_effects")
    return registry


def campaigns_settings(broker: Broker, database_url: str, prefix: str) -> CampaignsSettings:
    return settings_for(CampaignsSettings, broker, database_url, prefix)


@contextlib.asynccontextmanager
async def running(svc: S) -> AsyncIterator[S]:
    """Migrate, create topics, run the service's workers (relay, consumers) meanwhile."""
    await svc.migrate()
    await svc.ensure_topics()
    workers = svc.workers()
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield svc
    finally:
        for w in workers:
            with contextlib.suppress(Exception):
                await w.stop()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await svc.aclose()


@pytest.fixture
async def campaigns(
    broker: Broker, database: Database, topic_prefix: str
) -> AsyncIterator[Campaigns]:
    url = await database.create_database(f"test_cp_{uuid.uuid4().hex[:10]}")
    svc = campaigns_bootstrap(campaigns_settings(broker, url, topic_prefix), now=lambda: TODAY)
    async with running(svc):
        yield svc


@pytest.fixture
async def detection(
    broker: Broker, database: Database, topic_prefix: str
) -> AsyncIterator[Detection]:
    url = await database.create_database(f"test_dt_{uuid.uuid4().hex[:10]}")
    settings = settings_for(DetectionSettings, broker, url, topic_prefix)
    async with running(detection_bootstrap(settings, now=lambda: TODAY)) as svc:
        yield svc


@pytest.fixture
async def funding(broker: Broker, database: Database, topic_prefix: str) -> AsyncIterator[Funding]:
    url = await database.create_database(f"test_fd_{uuid.uuid4().hex[:10]}")
    settings = settings_for(FundingSettings, broker, url, topic_prefix)
    svc = funding_bootstrap(settings, now=lambda: FUNDING_TODAY)
    async with running(svc):
        await svc.load_seed()
        yield svc


@pytest.fixture
async def stack(
    registry: SiteRegistry, campaigns: Campaigns, detection: Detection
) -> AsyncIterator[Stack]:
    """Registry, campaigns and detection of the Béthune demo (its sites registered)."""
    await batch_jobs.load_sites(registry.uow, demo_sites(), registry.refs)
    await registry.relay.publish_pending()
    async with open_stack(registry, campaigns, detection) as st:
        yield st


@pytest.fixture
async def funding_stack(
    registry: SiteRegistry, campaigns: Campaigns, detection: Detection, funding: Funding
) -> AsyncIterator[FundingStack]:
    """The four services of the Béthune demo (its sites registered), as its crisis cell."""
    await batch_jobs.load_sites(registry.uow, demo_sites(), registry.refs)
    await registry.relay.publish_pending()
    async with open_funding_stack(registry, campaigns, detection, funding) as st:
        yield st
