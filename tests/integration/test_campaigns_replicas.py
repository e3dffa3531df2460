"""Two replicas of campaigns at the same moment, on PostgreSQL: one handles a new site of
a territory while the other launches the campaign of a closure shock in that territory
(the sites topic's partitions are split between them, and the two events are on
different partitions). The launch waits for the site's transaction, then sees the site:
the site is a target of the campaign, whichever commits first.

PostgreSQL only, by nature: the embedded SQLite default runs one process per service, a
consumer handles one message at a time, and there the lock is the database's write lock
(`lock_for_transaction`, shown by funding's seed test on both backends)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.campaigns.bootstrap import Campaigns
from services.campaigns.bootstrap import bootstrap as campaigns_bootstrap
from tests.integration.conftest import campaigns_settings
from tests.support.dsl import TODAY
from tests.support.infra import Broker, Database
from tests.support.waiting import eventually
from tests.unit.campaigns.test_service_layer import CLOSING, envelope, shock, siret, site_state

pytestmark = pytest.mark.integration


@pytest.fixture
async def campaigns_pg(
    broker: Broker, postgres: Database, topic_prefix: str
) -> AsyncIterator[tuple[Campaigns, str]]:
    url = await postgres.create_database(f"test_cpr_{uuid.uuid4().hex[:10]}")
    svc = campaigns_bootstrap(campaigns_settings(broker, url, topic_prefix), now=lambda: TODAY)
    await svc.migrate()
    try:
        yield svc, url
    finally:
        await svc.aclose()


async def waiting_on_a_lock(url: str) -> int:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        n = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(n)
    finally:
        await conn.close()


async def test_a_launch_on_one_replica_waits_for_a_new_site_on_the_other_and_targets_it(
    campaigns_pg: tuple[Campaigns, str],
) -> None:
    svc, url = campaigns_pg
    handlers = svc.site_handlers
    for n in (CLOSING, 1):  # the territory as the projection knows it before
        async with svc.uow() as uow:
            await handlers.site_changed(uow, envelope(site_state(n)))
            await uow.commit()

    new_site = site_state(2)
    async with svc.uow() as first:  # replica 1: the new site, not committed yet
        await handlers.site_changed(first, envelope(new_site))

        async def launch() -> None:  # replica 2: the closure shock of the same territory
            async with svc.uow() as second:
                await handlers.closure_announced(second, envelope(shock()))
                await second.commit()

        launching = asyncio.create_task(launch())
        # The launch waits on the territory's lock (it would otherwise read the sites
        # without the new one, and the site's handler would find no campaign).
        await eventually(
            lambda: waiting_on_a_lock(url), lambda n: n >= 1, what="the launch waiting"
        )
        assert not launching.done()
        await first.commit()
    await asyncio.wait_for(launching, 30)

    async with svc.uow() as uow:
        (campaign,) = await uow.campaigns.active_in_territories(new_site.territory_ids)
        assert set(campaign.targets) == {siret(1), siret(2)}
        assert siret(CLOSING) not in campaign.targets
