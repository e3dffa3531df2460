"""Fixtures for integration tests of the site registry on the real broker and database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.site_registry.bootstrap import SiteRegistry, bootstrap
from services.site_registry.settings import SiteRegistrySettings
from tests.support.infra import Broker

TEST_SECRET = "integration-tests-secret-of-at-least-32-chars"


def registry_settings(broker: Broker, database_url: str, prefix: str) -> SiteRegistrySettings:
    return SiteRegistrySettings(
        environment="test",
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_topic_prefix=prefix,
        jwt_secret=TEST_SECRET,  # type: ignore[arg-type]
        relay_poll_interval_s=0.05,
    )


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
