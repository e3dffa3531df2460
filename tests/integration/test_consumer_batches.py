"""The consumer runner's batches on the real broker and database: several messages of a
partition applied in one transaction keep their order, a poison message among them is
dead-lettered alone while the others are applied exactly once, and a crash in the middle
of a batch (or between its commit and the offset commit) changes nothing on redelivery."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import text

from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.service_layer import batch_jobs
from services.site_registry.service_layer.unit_of_work import SiteRegistryUnitOfWork
from shared.events.catalogue import SITES, event_registry
from shared.events.envelope import Envelope
from shared.events.site_registry import SiteRegistered, SiteState, SiteUpdated
from shared.messaging.consumer import ConsumerRunner, PermanentError
from tests.integration.conftest import create_effects_table
from tests.integration.test_messaging import siret_for, site
from tests.support.kafka import read_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def effects_table(registry: SiteRegistry) -> SiteRegistry:
    await create_effects_table(registry, "batch_effects", "version INTEGER NOT NULL")
    return registry


async def effects(registry: SiteRegistry) -> list[tuple[str, str, int]]:
    async with registry.session_factory() as s:
        rows = await s.execute(
            text("SELECT event_id, site_id, version FROM batch_effects ORDER BY n")
        )
        return [(r[0], r[1], r[2]) for r in rows]


async def record(uow: SiteRegistryUnitOfWork, env: Envelope[SiteState]) -> None:
    # Reads what the batch's earlier messages wrote (not committed yet): the version it
    # applies must follow the last one applied for the site, as in separate transactions.
    last = (
        await uow.session.execute(
            text("SELECT max(version) FROM batch_effects WHERE site_id = :s"),
            {"s": env.payload.site_id},
        )
    ).scalar()
    assert env.payload.version == (last or 0) + 1, (env.payload.site_id, last, env.payload.version)
    await uow.session.execute(
        text("INSERT INTO batch_effects (event_id, site_id, version) VALUES (:e, :s, :v)"),
        {"e": str(env.id), "s": env.payload.site_id, "v": env.payload.version},
    )


class Commits:
    """A unit-of-work factory counting the consumer's transactions that committed."""

    def __init__(self, registry: SiteRegistry) -> None:
        self.count = 0
        self._registry = registry

    def __call__(self) -> SiteRegistryUnitOfWork:
        counter = self

        class Counted(SiteRegistryUnitOfWork):
            async def commit(self) -> None:
                await super().commit()
                counter.count += 1

        r = self._registry
        return Counted(r.session_factory, source="test", on_commit_with_events=r.relay.notify)


def runner(
    registry: SiteRegistry,
    handler: Callable[[SiteRegistryUnitOfWork, Envelope[Any]], Any],
    *,
    name: str,
    uow_factory: Callable[[], SiteRegistryUnitOfWork] | None = None,
    batch_size: int = 100,
    concurrent: bool = False,
) -> ConsumerRunner[SiteRegistryUnitOfWork]:
    return ConsumerRunner(
        name=name,
        topics=[SITES],
        handlers={SiteRegistered.event_type: handler, SiteUpdated.event_type: handler},
        uow_factory=uow_factory or registry.uow,
        registry=event_registry(),
        bootstrap_servers=registry.settings.kafka_bootstrap_servers,
        producer_factory=registry.producer,
        topic_prefix=registry.settings.kafka_topic_prefix,
        max_attempts=2,
        backoff_s=0.01,
        transaction_size=batch_size,
        concurrent_partitions=concurrent,
    )


async def run_until(
    consumer: ConsumerRunner[SiteRegistryUnitOfWork],
    registry: SiteRegistry,
    count: int,
    what: str,
) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: effects(registry), lambda e: len(e) >= count, what=what)
        await asyncio.sleep(0.3)  # anything more (a duplicate) would show up now
    finally:
        await consumer.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def one_partition(first: int, count: int) -> list[str]:
    """`count` site keys that Kafka's default partitioner puts on the same partition."""
    partitions = list(range(SITES.partitions))
    keys = (siret_for(first + n) for n in range(count * SITES.partitions * 10))
    on_0 = (k for k in keys if DefaultPartitioner()(k.encode(), partitions, partitions) == 0)
    return [next(on_0) for _ in range(count)]


def name() -> str:
    return f"test-batch-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("concurrent", [False, True], ids=["in-turn", "concurrent"])
async def test_a_batch_keeps_each_key_in_order_and_applies_each_message_once(
    effects_table: SiteRegistry, concurrent: bool
) -> None:
    registry = effects_table
    keys = [siret_for(100 + n) for n in range(6)]
    for version in range(10):  # 6 sites × 10 versions, interleaved, one commit each
        for key in keys:
            await batch_jobs.load_sites(
                registry.uow, [site(key, name=f"ACME v{version}")], registry.refs
            )
    await registry.relay.publish_pending()  # all there before the consumer's first fetch

    commits = Commits(registry)
    consumer = runner(registry, record, name=name(), uow_factory=commits, concurrent=concurrent)
    await run_until(consumer, registry, 60, "60 effects")

    applied = await effects(registry)
    assert len(applied) == 60 and len({e for e, _, _ in applied}) == 60
    for key in keys:
        assert [v for _, s, v in applied if s == key] == list(range(1, 11))
    assert consumer.stats.processed == 60
    assert consumer.stats.batch_fallbacks == 0
    assert commits.count < 60  # several messages per transaction


async def test_a_poison_message_in_a_batch_is_dead_lettered_and_the_others_applied_once(
    effects_table: SiteRegistry,
) -> None:
    registry = effects_table
    keys = one_partition(200, 15)  # one partition: the poison shares a batch
    poison = keys[7]
    for key in keys[:5]:
        await batch_jobs.load_sites(registry.uow, [site(key)], registry.refs)
    await registry.relay.publish_pending()
    # An undecodable message among them, keyed like a site of the batch's partition.
    producer = AIOKafkaProducer(bootstrap_servers=registry.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            SITES.physical(registry.settings.kafka_topic_prefix),
            b"{not json",
            key=keys[2].encode(),
            headers=[("ce_type", b"x")],
        )
    finally:
        await producer.stop()
    for key in keys[5:]:
        await batch_jobs.load_sites(registry.uow, [site(key)], registry.refs)
    await registry.relay.publish_pending()

    calls: list[str] = []

    async def handler(uow: SiteRegistryUnitOfWork, env: Envelope[SiteState]) -> None:
        calls.append(env.payload.site_id)
        await record(uow, env)  # written, then rolled back with the batch
        if env.payload.site_id == poison:
            raise PermanentError("this site can never apply")

    consumer = runner(registry, handler, name=name())
    await run_until(consumer, registry, 14, "the 14 healthy effects")
    await eventually(
        lambda: asyncio.sleep(0, consumer.stats.dead_lettered), lambda n: n == 2, what="DLQ"
    )

    applied = await effects(registry)
    assert sorted(s for _, s, _ in applied) == sorted(k for k in keys if k != poison)
    assert len({e for e, _, _ in applied}) == 14  # each once
    assert consumer.stats.batch_fallbacks >= 1  # the poison was in a batch, rolled back
    assert calls.count(poison) == 2  # in the batch, then alone (PermanentError: no retry)
    dead = await read_all(
        registry.settings.kafka_bootstrap_servers,
        SITES.physical_dlq(registry.settings.kafka_topic_prefix),
    )
    reasons = {m.key.decode(): m.headers["dlq_reason"] for m in dead if m.key}
    assert reasons[poison] == "this site can never apply"
    assert "missing CloudEvents headers" in reasons[keys[2]]
    assert (
        json.loads(next(m.value for m in dead if m.key == poison.encode()) or b"")["site_id"]
        == poison
    )


class Crash(BaseException):
    """The process dying in the middle of a batch (not an error the runner handles)."""


async def test_a_crash_in_a_batch_or_before_its_offsets_are_committed_gives_no_double_effect(
    effects_table: SiteRegistry,
) -> None:
    registry = effects_table
    group = name()
    first = [siret_for(300 + n) for n in range(12)]
    for key in first:
        await batch_jobs.load_sites(registry.uow, [site(key)], registry.refs)
    await registry.relay.publish_pending()

    # 1. The batches commit in the database, then the process dies before the offsets.
    a = runner(registry, record, name=group)

    async def never() -> None:
        return None

    a.commit_offsets = never  # type: ignore[method-assign]
    await run_until(a, registry, 12, "first effects")

    # 2. More events; this process dies in the middle of a batch (after a few handlers).
    more = [siret_for(400 + n) for n in range(12)]
    for key in more:
        await batch_jobs.load_sites(registry.uow, [site(key)], registry.refs)
    await registry.relay.publish_pending()
    handled = 0

    async def dying(uow: SiteRegistryUnitOfWork, env: Envelope[SiteState]) -> None:
        nonlocal handled
        await record(uow, env)
        if env.payload.site_id in more:
            handled += 1
            if handled == 3:
                raise Crash

    b = runner(registry, dying, name=group)
    b.commit_offsets = never  # type: ignore[method-assign]  # dead: it commits nothing
    with pytest.raises(Crash):
        await asyncio.wait_for(b.run(), timeout=60)
    with contextlib.suppress(Exception):
        await b.stop()
    assert len(await effects(registry)) < 24  # the crashed batch left nothing

    # 3. A fresh process of the group: everything redelivered, each effect once.
    c = runner(registry, record, name=group)
    await run_until(c, registry, 24, "every effect")
    applied = await effects(registry)
    assert sorted(s for _, s, _ in applied) == sorted(first + more)
    assert len({e for e, _, _ in applied}) == 24
    # No offset was ever committed: all 24 came again, and the inbox kept each effect once.
    assert c.stats.duplicates >= 12
    assert c.stats.processed + c.stats.duplicates == 24
