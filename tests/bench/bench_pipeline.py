"""Event pipeline, end to end: from a use case's commit to the consumer's effect committed
(outbox → relay → Kafka → consumer runner → inbox + effect), against raw aiokafka
produce-and-consume of the same messages on the same broker, in the same run.

The pieces are the real ones, on real PostgreSQL and the real broker:

- the producer is the **site registry**: its schema from its Alembic migrations, its
  reference data, and its real use case (`commands.upsert_many`, what the demo load and
  the Sirene import run) committed by its real unit of work: state change and outbox rows
  in one transaction;
- its real `OutboxRelay` publishes them (lease, one Kafka transaction per batch);
- the consumer is the **campaigns** service's `sites` consumer: its real handlers
  (`SiteEventHandlers`: the `campaign_sites` projection) run by the real `ConsumerRunner`
  with the campaigns' inbox, in the campaigns schema from its migrations, with the
  service's settings (`CampaignsSettings` defaults, batch sizes included).

The events are GENERATED, never real data: sites of generated SIRETs
(`90000000…`/`91000000…`), named "GENERATED …", source `generated`, in Béthune (62119,
ti-3205). Each is a new site: one `SiteRegistered` (~320 B of JSON and its CloudEvents
headers), keyed by its SIRET.

Three measures, figures only (never assertions):

1. **Drain** (throughput): `BENCH_PIPELINE_EVENTS` (20,000) events committed by the use
   case (`BENCH_PIPELINE_WRITE_BATCH` sites per unit of work, 100, like an import's
   batch) while the relay is stopped; the consumer is started and has its partitions;
   then the relay starts. Events per second = N / (relay start → last effect committed).
2. **Live** (latency): relay and consumer running, `BENCH_PIPELINE_LIVE_EVENTS` (2,000)
   sites registered one unit of work each (the HTTP path's shape), back to back; per
   event, the time from its use case's commit to the commit of the consumer transaction
   that applied it: p50 / p99 (the writer is the bottleneck here: its rate is printed).
3. **Baseline**: the drained outbox's very messages (keys, values, headers) produced by
   a raw aiokafka producer (idempotent, acks=all, the relay's linger) to a topic of the
   same partitions, and consumed by a raw aiokafka consumer (group, started and assigned
   first) in the same event loop: messages per second from the first send to the last
   receipt, and its send → receipt p50/p99.

The effect's commit time is stamped by a unit of work subclass after its `commit()`
returns (the handler notes which site it applied): nothing else differs from the service.
Every process of the pipeline here runs in this one event loop (as the baseline's
producer and consumer do); PostgreSQL and Kafka are processes of their own.

`BENCH_PIPELINE_PROFILE=1` profiles the drain with cProfile (kept in
`.run/bench/pipeline/drain.prof`, top functions printed).
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.bench.bench_campaigns import delete_topics, drop_databases, percentile, say
from tests.bench.infra import on_real_infrastructure
from tests.support.infra import Broker, Database

EVENTS = int(os.environ.get("BENCH_PIPELINE_EVENTS", "20000"))
LIVE_EVENTS = int(os.environ.get("BENCH_PIPELINE_LIVE_EVENTS", "2000"))
WRITE_BATCH = int(os.environ.get("BENCH_PIPELINE_WRITE_BATCH", "100"))
PROFILE = os.environ.get("BENCH_PIPELINE_PROFILE", "") not in ("", "0")
TIMEOUT_S = float(os.environ.get("BENCH_PIPELINE_TIMEOUT_S", "1800"))
SECRET = "bench-pipeline-secret-of-at-least-32-characters"
OUT = Path(__file__).resolve().parents[2] / ".run" / "bench" / "pipeline"


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def _site(n: int) -> Any:
    from services.site_registry.domain.model import SiteSource
    from services.site_registry.domain.siret import make_siret
    from services.site_registry.service_layer.commands import SiteInput

    return SiteInput(
        siret=make_siret(f"{90_000_000 + n:08d}", "0001"),
        naf_code="25.62A",
        commune_insee="62119",
        source=SiteSource.GENERATED,
        name=f"GENERATED bench-generator site {n}",
        headcount_band="12",
    )


class _Clock:
    """Use-case commit and effect-commit times per site (perf_counter, one process)."""

    def __init__(self) -> None:
        self.committed: dict[str, float] = {}
        self.applied: dict[str, float] = {}
        self.last_effect = 0.0
        self.changed = asyncio.Event()


def _stamped_uow(campaigns: Any, clock: _Clock) -> Callable[[], Any]:
    from services.campaigns.service_layer.unit_of_work import CampaignsUnitOfWork

    class StampedUnitOfWork(CampaignsUnitOfWork):
        """The campaigns unit of work; stamps the sites it applied when its commit returns."""

        bench_applied: list[str]

        async def __aenter__(self) -> StampedUnitOfWork:
            self.bench_applied = []
            return await super().__aenter__()

        async def commit(self) -> None:
            await super().commit()
            now = time.perf_counter()
            for site_id in self.bench_applied:
                clock.applied.setdefault(site_id, now)
            if self.bench_applied:
                clock.last_effect = now
                clock.changed.set()
            self.bench_applied = []

        async def rollback(self) -> None:
            self.bench_applied = []
            await super().rollback()

    def factory() -> CampaignsUnitOfWork:
        return StampedUnitOfWork(
            campaigns.session_factory,
            source="campaigns",
            on_commit_with_events=campaigns.relay.notify,
        )

    return factory


def _noting(
    handler: Callable[[Any, Any], Awaitable[None]],
) -> Callable[[Any, Any], Awaitable[None]]:
    async def noted(uow: Any, env: Any) -> None:
        await handler(uow, env)
        uow.bench_applied.append(env.payload.site_id)

    return noted


async def _write(registry: Any, clock: _Clock, first: int, n: int, per_uow: int) -> float:
    """Commit n new sites through the registry's use case, per_uow per unit of work."""
    from services.site_registry.service_layer import commands

    started = time.perf_counter()
    for start in range(first, first + n, per_uow):
        batch = [_site(i) for i in range(start, min(first + n, start + per_uow))]
        async with registry.uow() as uow:
            await commands.upsert_many(uow, batch, registry.refs)
            await uow.commit()
        now = time.perf_counter()
        for s in batch:
            clock.committed[s.siret] = now
        if per_uow == 1:
            await asyncio.sleep(0)  # the HTTP path yields between requests
    return time.perf_counter() - started


async def _until(clock: _Clock, count: int, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while len(clock.applied) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: {len(clock.applied)} of {count} effects")
        clock.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(clock.changed.wait(), timeout=1.0)


async def _assigned(consumer: Any) -> None:
    for _ in range(600):
        if consumer.assignment():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("consumer got no partitions")


def _lat_ms(pairs: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(pairs, 50) * 1000, 1),
        "p99_ms": round(percentile(pairs, 99) * 1000, 1),
        "max_ms": round(max(pairs) * 1000, 1),
    }


async def _raw(
    broker: Broker, prefix: str, messages: list[tuple[str, bytes, bytes, Any]]
) -> dict[str, Any]:
    """Raw aiokafka produce-and-consume of the same messages, end to end."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from shared.events.catalogue import SITES
    from shared.messaging.kafka import ensure_topics

    await ensure_topics(broker.bootstrap_servers, [SITES], prefix=prefix, with_dlq=False)
    topic = SITES.physical(prefix)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        group_id=f"{prefix}raw",
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
    )
    await consumer.start()
    await producer.start()
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)

        async def consume() -> float:
            received = 0
            last = 0.0
            while received < len(messages):
                batches = await consumer.getmany(timeout_ms=200, max_records=1000)
                now = time.perf_counter()
                for records in batches.values():
                    for r in records:
                        latencies.append(now - sent[r.key])
                        received += 1
                        last = now
            return last

        reader = asyncio.create_task(consume())
        started = time.perf_counter()
        futures = []
        for _topic, key, value, headers in messages:
            sent[key] = time.perf_counter()
            futures.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*futures)
        last = await asyncio.wait_for(reader, TIMEOUT_S)
    finally:
        await producer.stop()
        await consumer.stop()
    seconds = last - started
    return {
        "seconds": round(seconds, 3),
        "msg_per_s": round(len(messages) / seconds),
        **_lat_ms(latencies),
    }


async def _bench(broker: Broker, database: Database) -> dict[str, Any]:
    import sqlalchemy as sa

    from services.campaigns.bootstrap import bootstrap as campaigns_bootstrap
    from services.campaigns.settings import CampaignsSettings
    from services.site_registry.bootstrap import bootstrap as registry_bootstrap
    from services.site_registry.settings import SiteRegistrySettings
    from shared.events.catalogue import SITES
    from shared.messaging.tables import InboxMessage, OutboxEvent

    tag = uuid.uuid4().hex[:8]
    names = [f"bench_pipe_sr_{tag}", f"bench_pipe_cp_{tag}"]
    sr_url = await database.create_database(names[0])
    cp_url = await database.create_database(names[1])
    prefix = f"benchpipe{tag}."
    common: dict[str, Any] = {
        "environment": "test",
        "jwt_secret": SECRET,
        "kafka_bootstrap_servers": broker.bootstrap_servers,
        "kafka_topic_prefix": prefix,
    }
    registry = registry_bootstrap(SiteRegistrySettings(database_url=sr_url, **common))
    campaigns = campaigns_bootstrap(CampaignsSettings(database_url=cp_url, **common))
    clock = _Clock()
    tasks: list[asyncio.Task[None]] = []
    result: dict[str, Any] = {
        "events": EVENTS,
        "live_events": LIVE_EVENTS,
        "write_batch": WRITE_BATCH,
    }
    consumer = None
    try:
        await registry.migrate()
        await registry.ensure_topics()
        await registry.load_reference_data()
        await campaigns.migrate()
        await campaigns.ensure_topics()
        result["consumer_batch_size"] = campaigns.settings.consumer_batch_size
        result["relay_batch_size"] = registry.settings.relay_batch_size
        handlers = {t: _noting(h) for t, h in campaigns.site_handlers.table().items()}
        consumer = campaigns.consumer_runner(
            "sites", [SITES], handlers, _stamped_uow(campaigns, clock)
        )

        # 1. Drain: commit N events with the relay stopped.
        say(f"pipeline: committing {EVENTS:,} GENERATED site events (load {loadavg()})")
        write_s = await _write(registry, clock, 0, EVENTS, WRITE_BATCH)
        result["drain_write_s"] = round(write_s, 2)
        result["drain_write_events_per_s"] = round(EVENTS / write_s)
        say(f"pipeline: written in {write_s:.1f} s ({EVENTS / write_s:,.0f} events/s)")
        async with registry.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        OutboxEvent.topic, OutboxEvent.key, OutboxEvent.payload, OutboxEvent.headers
                    ).order_by(OutboxEvent.id)  # type: ignore[call-overload]
                )
            ).all()
        messages = [
            (r[0], r[1].encode(), r[2].encode(), [(k, v.encode()) for k, v in r[3]]) for r in rows
        ]
        result["message_bytes_mean"] = round(sum(len(m[2]) for m in messages) / len(messages))
        result["load_before_drain"] = loadavg()

        await consumer.start()
        tasks.append(asyncio.create_task(consumer.run()))
        await _assigned(consumer._consumer)
        profiler = cProfile.Profile() if PROFILE else None
        say(f"pipeline: consumer assigned; relay starts (load {loadavg()})")
        if profiler:
            profiler.enable()
        started = time.perf_counter()
        tasks.append(asyncio.create_task(registry.relay.run()))
        await _until(clock, EVENTS, "drain")
        drain_s = clock.last_effect - started
        if profiler:
            profiler.disable()
            OUT.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(OUT / "drain.prof")
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
            print(text.getvalue(), flush=True)
        result["drain_s"] = round(drain_s, 3)
        result["drain_events_per_s"] = round(EVENTS / drain_s)
        result["load_after_drain"] = loadavg()
        say(
            f"pipeline: drained in {drain_s:.2f} s ({EVENTS / drain_s:,.0f} events/s,"
            f" load {loadavg()})"
        )

        # 2. Live: one unit of work per event, relay and consumer running.
        before = len(clock.applied)
        live_s = await _write(registry, clock, EVENTS, LIVE_EVENTS, 1)
        await _until(clock, before + LIVE_EVENTS, "live")
        live_keys = [_site(i).siret for i in range(EVENTS, EVENTS + LIVE_EVENTS)]
        live = [clock.applied[k] - clock.committed[k] for k in live_keys]
        result["live_write_events_per_s"] = round(LIVE_EVENTS / live_s)
        result["live_latency"] = _lat_ms(live)
        result["load_after_live"] = loadavg()
        say(
            f"pipeline: live {LIVE_EVENTS:,} events at {LIVE_EVENTS / live_s:,.0f}/s:"
            f" commit → effect p50 {result['live_latency']['p50_ms']} ms,"
            f" p99 {result['live_latency']['p99_ms']} ms (load {loadavg()})"
        )
        for t in tasks:
            t.cancel()
        await consumer.stop()
        await registry.relay.stop()
        stats = consumer.stats
        async with campaigns.engine.connect() as conn:
            projected = (
                await conn.execute(sa.text("SELECT count(*) FROM campaign_sites"))
            ).scalar()
            inbox = (
                await conn.execute(sa.select(sa.func.count()).select_from(InboxMessage))
            ).scalar()
        result["check"] = {
            "campaign_sites": projected,
            "inbox_rows": inbox,
            "processed": stats.processed,
            "duplicates": stats.duplicates,
            "dead_lettered": stats.dead_lettered,
            "expected": EVENTS + LIVE_EVENTS,
        }
        say(f"pipeline: check {result['check']}")

        # 3. Baseline: the same messages, raw aiokafka, same broker.
        say(
            f"pipeline: raw aiokafka produce-and-consume of {len(messages):,} messages"
            f" (load {loadavg()})"
        )
        result["raw"] = await _raw(broker, prefix + "raw.", messages)
        result["load_after_raw"] = loadavg()
        say(f"pipeline: raw {result['raw']} (load {loadavg()})")
        result["ratio_drain_over_raw"] = round(
            result["drain_events_per_s"] / result["raw"]["msg_per_s"], 3
        )
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        await registry.aclose()
        await campaigns.aclose()
        await delete_topics(broker.bootstrap_servers, [prefix])
        await drop_databases(database, names)
    return result


def run() -> dict[str, Any]:
    result = figures = on_real_infrastructure(_bench)
    raw = figures["raw"]
    lat = figures["live_latency"]
    print(
        f"[bench] event pipeline, {EVENTS:,} GENERATED events (~{figures['message_bytes_mean']} B),"
        f" {result['broker']}, {result['database']}:\n"
        f"  pipeline drain (relay start → last effect committed; relay batch"
        f" {figures['relay_batch_size']}, consumer batch {figures['consumer_batch_size']}):"
        f" {figures['drain_s']:.2f} s,"
        f" {figures['drain_events_per_s']:,} events/s (load {figures['load_after_drain']})\n"
        f"  raw aiokafka produce-and-consume (baseline): {raw['seconds']:.2f} s,"
        f" {raw['msg_per_s']:,} msg/s; send → receipt p50 {raw['p50_ms']} ms,"
        f" p99 {raw['p99_ms']} ms"
        f" (load {figures['load_after_raw']})\n"
        f"  ratio pipeline / raw: {figures['ratio_drain_over_raw']} (goal ≥ 0.25)\n"
        f"  live, {LIVE_EVENTS:,} events one unit of work each,"
        f" written at {figures['live_write_events_per_s']:,}/s: commit → effect committed"
        f" p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms\n"
        f"  check: {figures['check']}",
        flush=True,
    )
    return result
