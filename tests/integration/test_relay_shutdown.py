"""A relay stopped cleanly hands its lease over at once; a stale holder releases nothing.

On the real broker and database (PostgreSQL, and SQLite: the lease's statements are the
same for both). The fault suite does the same with real processes and SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from services.site_registry.bootstrap import bootstrap
from services.site_registry.service_layer import batch_jobs
from shared.messaging.lease import Lease
from tests.integration.conftest import registry_settings
from tests.integration.test_messaging import siret_for, site, topic
from tests.support.infra import Broker
from tests.support.kafka import read_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_a_stopped_leader_hands_over_at_once_not_after_the_ttl(
    broker: Broker, database_url: str, topic_prefix: str
) -> None:
    settings = registry_settings(broker, database_url, topic_prefix)
    settings.relay_lease_ttl_s = 30.0  # a takeover by expiry would take this long
    first, second = bootstrap(settings), bootstrap(settings)
    await first.migrate()
    await first.ensure_topics()
    await first.load_reference_data()
    tasks = [asyncio.create_task(first.relay.run())]
    try:
        await batch_jobs.load_sites(first.uow, [site(siret_for(1))], first.refs)
        first.relay.notify()
        await eventually(lambda: asyncio.sleep(0, first.relay.published), lambda n: n == 1)
        tasks.append(asyncio.create_task(second.relay.run()))
        await asyncio.sleep(0.3)  # the standby polls a few times: the lease is not free
        assert not second.relay.lease.held

        stopping = time.monotonic()
        await first.relay.stop()
        stopped_in = time.monotonic() - stopping
        assert not first.relay.lease.held
        await eventually(
            lambda: asyncio.sleep(0, second.relay.lease.held), timeout=5, what="standby leads"
        )
        takeover = time.monotonic() - stopping
        assert takeover < settings.relay_lease_ttl_s / 10, takeover
        state = await second.relay.lease.state()
        assert state is not None and state.holder == second.relay.lease.holder
        assert state.token == 2  # the first leader's token + 1: fenced as a takeover is

        await batch_jobs.load_sites(second.uow, [site(siret_for(2))], second.refs)
        second.relay.notify()
        await eventually(lambda: asyncio.sleep(0, second.relay.published), lambda n: n == 1)
        print(f"\nstop took {stopped_in:.2f} s; standby led {takeover:.2f} s after (TTL 30 s)")
    finally:
        for svc in (first, second):
            with contextlib.suppress(Exception):
                await svc.relay.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for svc in (first, second):
            with contextlib.suppress(Exception):
                await svc.aclose()
    messages = await read_all(broker.bootstrap_servers, topic(first))
    assert sorted(m.key for m in messages) == [siret_for(1).encode(), siret_for(2).encode()]


async def test_a_holder_whose_lease_was_taken_releases_nothing(
    broker: Broker, database_url: str, topic_prefix: str
) -> None:
    settings = registry_settings(broker, database_url, topic_prefix)
    registry = bootstrap(settings)
    await registry.migrate()
    try:
        stale = Lease(registry.engine, "release-test", ttl_s=0.2)
        assert await stale.acquire_or_renew()
        taker = Lease(registry.engine, "release-test", ttl_s=30.0)
        await eventually(taker.acquire_or_renew, timeout=5, what="the expired lease taken")
        # The stale holder still believes it holds the lease (it has not renewed since):
        # its release must not free the lease the taker now holds.
        assert stale.held
        assert await stale.release() is False
        state = await taker.state()
        assert state is not None
        assert (state.holder, state.token) == (taker.holder, 2)
        assert state.expires_in_s > 20
        assert await taker.release() is True
        state = await taker.state()
        assert state is not None and state.expires_in_s < 0  # free for anyone now
    finally:
        await registry.aclose()
