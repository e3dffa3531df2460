"""The event backbone on the real broker and database: outbox atomicity, relay crash
recovery, inbox deduplication, dead-lettering, per-aggregate order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from services.site_registry.bootstrap import SiteRegistry, bootstrap
from services.site_registry.domain.model import SiteSource
from services.site_registry.service_layer import batch_jobs, commands
from services.site_registry.service_layer.unit_of_work import SiteRegistryUnitOfWork
from shared.events.catalogue import SITES, event_registry
from shared.events.envelope import Envelope
from shared.events.site_registry import SiteRegistered, SiteUpdated
from shared.messaging.consumer import ConsumerRunner, PermanentError
from shared.messaging.tables import OutboxEvent, utcnow
from tests.integration.conftest import registry_settings
from tests.support.infra import Broker
from tests.support.kafka import read_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def site(siret: str, *, name: str = "ACME", band: str | None = "12") -> commands.SiteInput:
    return commands.SiteInput(
        siret=siret,
        naf_code="25.62A",
        commune_insee="62119",
        source=SiteSource.MANUAL,
        name=name,
        headcount_band=band,
    )


def siret_for(n: int) -> str:
    from services.site_registry.domain.siret import make_siret

    return make_siret(f"{90000000 + n:08d}", "0001")


async def outbox_rows(registry: SiteRegistry) -> list[OutboxEvent]:
    from sqlmodel import select

    async with registry.session_factory() as s:
        return list((await s.exec(select(OutboxEvent).order_by(OutboxEvent.id))).all())


async def effects(registry: SiteRegistry) -> list[tuple[str, str]]:
    async with registry.session_factory() as s:
        rows = await s.execute(text("SELECT event_id, site_id FROM test_effects ORDER BY n"))
        return [(r[0], r[1]) for r in rows]


async def record_effect(uow: SiteRegistryUnitOfWork, env: Envelope[SiteRegistered]) -> None:
    await uow.session.execute(
        text("INSERT INTO test_effects (event_id, site_id) VALUES (:e, :s)"),
        {"e": str(env.id), "s": env.payload.site_id},
    )


def runner(
    registry: SiteRegistry, handler, *, name: str | None = None, attempts: int = 3
) -> ConsumerRunner[SiteRegistryUnitOfWork]:
    return ConsumerRunner(
        name=name or f"test-consumer-{uuid.uuid4().hex[:8]}",
        topics=[SITES],
        handlers={SiteRegistered.event_type: handler},
        uow_factory=registry.uow,
        registry=event_registry(),
        bootstrap_servers=registry.settings.kafka_bootstrap_servers,
        producer_factory=registry.producer,
        topic_prefix=registry.settings.kafka_topic_prefix,
        max_attempts=attempts,
        backoff_s=0.01,
    )


@pytest.fixture
async def running() -> AsyncIterator[list[ConsumerRunner[SiteRegistryUnitOfWork]]]:
    runners: list[ConsumerRunner[SiteRegistryUnitOfWork]] = []
    tasks: list[asyncio.Task[None]] = []

    yield runners  # the test appends; we start them lazily below

    for r, t in zip(runners, tasks, strict=False):
        await r.stop()
        t.cancel()


def start(r: ConsumerRunner[SiteRegistryUnitOfWork]) -> asyncio.Task[None]:
    return asyncio.create_task(r.run())


async def stop(r: ConsumerRunner[SiteRegistryUnitOfWork], task: asyncio.Task[None]) -> None:
    await r.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def topic(registry: SiteRegistry) -> str:
    return SITES.physical(registry.settings.kafka_topic_prefix)


async def test_rolled_back_change_publishes_nothing(registry: SiteRegistry) -> None:
    doomed, kept = siret_for(1), siret_for(2)
    refs = registry.refs
    sid, facts = commands.check_site(site(doomed), refs)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with registry.uow() as uow:
            from services.site_registry.domain.model import Site

            uow.sites.add(Site.register(sid, facts, ("ti-3205",)))
            await uow.session.flush()  # the row and its event were really written…
            raise Boom  # …then the transaction dies before the commit

    await batch_jobs.load_sites(registry.uow, [site(kept)], refs)
    await registry.relay.publish_pending()

    rows = await outbox_rows(registry)
    assert [r.key for r in rows] == [kept]
    messages = await read_all(registry.settings.kafka_bootstrap_servers, topic(registry))
    assert [m.key for m in messages] == [kept.encode()]


async def test_relay_killed_after_publishing_republishes_and_inbox_keeps_one_effect(
    broker: Broker, database_url: str, topic_prefix: str, effect_table: SiteRegistry
) -> None:
    registry = effect_table

    class RelayKilled(Exception):
        pass

    async def die_before_marking(rows: Sequence[OutboxEvent]) -> None:
        raise RelayKilled(f"killed after the broker acked {len(rows)} rows")

    crashing = bootstrap(
        registry_settings(broker, database_url, topic_prefix), after_publish=die_before_marking
    )
    await batch_jobs.load_sites(crashing.uow, [site(siret_for(3))], crashing.refs)
    with pytest.raises(RelayKilled):
        await crashing.relay.publish_pending()
    await crashing.aclose()  # the process dies: its connection, hence its lock, go away

    assert all(r.sent_at is None for r in await outbox_rows(registry))
    assert await registry.relay.publish_pending() == 1  # the next relay re-publishes
    assert all(r.sent_at is not None for r in await outbox_rows(registry))

    messages = await read_all(registry.settings.kafka_bootstrap_servers, topic(registry))
    assert len(messages) == 2
    assert messages[0].headers["ce_id"] == messages[1].headers["ce_id"]

    consumer = runner(registry, record_effect)
    task = start(consumer)
    try:
        await eventually(
            lambda: asyncio.sleep(0, consumer.stats.processed + consumer.stats.duplicates),
            lambda n: n >= 2,
            what=f"both copies consumed ({consumer.stats})",
        )
    finally:
        await stop(consumer, task)
    assert consumer.stats.processed == 1 and consumer.stats.duplicates == 1
    assert [s for _, s in await effects(registry)] == [siret_for(3)]


async def test_malformed_event_is_dead_lettered_and_partition_moves_on(
    effect_table: SiteRegistry,
) -> None:
    registry = effect_table
    key = siret_for(4)
    producer = AIOKafkaProducer(bootstrap_servers=registry.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic(registry), b"{not json", key=key.encode(), headers=[("ce_type", b"x")]
        )
    finally:
        await producer.stop()
    # A well-formed event of the same key lands after it on the same partition.
    await batch_jobs.load_sites(registry.uow, [site(key)], registry.refs)
    await registry.relay.publish_pending()

    consumer = runner(registry, record_effect)
    task = start(consumer)
    try:
        await eventually(effects_of(registry), lambda e: len(e) == 1, what="good event applied")
    finally:
        await stop(consumer, task)

    dead = await read_all(
        registry.settings.kafka_bootstrap_servers,
        SITES.physical_dlq(registry.settings.kafka_topic_prefix),
    )
    assert len(dead) == 1
    assert dead[0].value == b"{not json"
    assert "missing CloudEvents headers" in dead[0].headers["dlq_reason"]
    assert dead[0].headers["dlq_consumer"] == consumer.name
    assert dead[0].headers["dlq_original_topic"] == topic(registry)
    assert consumer.stats.dead_lettered == 1


async def test_handler_failing_every_time_is_dead_lettered_after_its_retries(
    effect_table: SiteRegistry,
) -> None:
    registry = effect_table
    calls = 0

    async def flaky(uow: SiteRegistryUnitOfWork, env: Envelope[SiteRegistered]) -> None:
        nonlocal calls
        calls += 1
        await record_effect(uow, env)  # written, then rolled back with the failure
        if env.payload.site_id == siret_for(5):
            raise RuntimeError("downstream rule broke")
        if env.payload.site_id == siret_for(6):
            raise PermanentError("this event can never apply")

    for n in (5, 6, 7):
        await batch_jobs.load_sites(registry.uow, [site(siret_for(n))], registry.refs)
    await registry.relay.publish_pending()

    consumer = runner(registry, flaky, attempts=3)
    task = start(consumer)
    try:
        await eventually(effects_of(registry), lambda e: len(e) == 1, what="healthy event applied")
        await eventually(
            lambda: asyncio.sleep(0, consumer.stats.dead_lettered), lambda n: n == 2, what="DLQ"
        )
    finally:
        await stop(consumer, task)

    assert [s for _, s in await effects(registry)] == [siret_for(7)]
    dead = await read_all(
        registry.settings.kafka_bootstrap_servers,
        SITES.physical_dlq(registry.settings.kafka_topic_prefix),
    )
    by_key = {m.key.decode(): m.headers for m in dead if m.key}
    assert by_key[siret_for(5)]["dlq_attempts"] == "3"
    assert by_key[siret_for(5)]["dlq_reason"] == "downstream rule broke"
    assert by_key[siret_for(6)]["dlq_attempts"] == "1"
    assert by_key[siret_for(6)]["dlq_error_type"] == "PermanentError"
    # The dead-lettered copy keeps its envelope, so it can be replayed as is.
    assert by_key[siret_for(5)]["ce_type"] == SiteRegistered.event_type


def effects_of(registry: SiteRegistry):
    async def probe() -> list[tuple[str, str]]:
        return await effects(registry)

    return probe


async def test_events_of_one_aggregate_arrive_in_order(registry: SiteRegistry) -> None:
    key = siret_for(8)
    for n in range(25):
        await batch_jobs.load_sites(registry.uow, [site(key, name=f"ACME {n}")], registry.refs)
        if n % 5 == 0:
            await registry.relay.publish_pending()  # publish in several passes
    for n in range(9, 14):  # other aggregates interleaved
        await batch_jobs.load_sites(registry.uow, [site(siret_for(n))], registry.refs)
    await registry.relay.publish_pending()

    messages = await read_all(registry.settings.kafka_bootstrap_servers, topic(registry))
    mine = [m for m in messages if m.key == key.encode()]
    assert len({m.partition for m in mine}) == 1
    versions = [json.loads(m.value or b"")["version"] for m in sorted(mine, key=lambda m: m.offset)]
    assert versions == list(range(1, 26))
    types = [m.headers["ce_type"] for m in sorted(mine, key=lambda m: m.offset)]
    assert types[0] == SiteRegistered.event_type
    assert set(types[1:]) == {SiteUpdated.event_type}


async def test_sent_rows_are_purged_after_the_retention_and_unsent_ones_kept(
    registry: SiteRegistry,
) -> None:
    from datetime import timedelta

    import sqlalchemy as sa

    await batch_jobs.load_sites(registry.uow, [site(siret_for(20))], registry.refs)
    await registry.relay.publish_pending()
    await batch_jobs.load_sites(registry.uow, [site(siret_for(21))], registry.refs)  # unsent
    async with registry.session_factory() as s:
        await s.exec(  # the first row was sent ten days ago
            sa.update(OutboxEvent)
            .where(OutboxEvent.key == siret_for(20))
            .values(sent_at=utcnow() - timedelta(days=10))
        )
        await s.commit()

    assert await registry.relay.purge_sent(timedelta(days=7)) == 1
    assert [r.key for r in await outbox_rows(registry)] == [siret_for(21)]
