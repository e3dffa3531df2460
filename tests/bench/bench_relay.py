"""Outbox relay throughput: what one publisher with a lease and one Kafka transaction per
batch costs, against a raw aiokafka producer sending the same records in the same run.

1. A fresh PostgreSQL database (the site registry's schema) and topic prefix.
2. GENERATED outbox rows, never real data: `BENCH_RELAY_ROWS` (20,000) site events of
   generated SIRETs (`ce_source` = `bench-generator`), written straight into
   `outbox_events` as committed state changes would leave them.
3. The baseline: a raw aiokafka producer (idempotent, acks=all, the relay's linger)
   sends the same keys, values and headers to another topic prefix, awaiting every
   acknowledgement — what any at-least-once publisher must pay.
4. The relay: `OutboxRelay.publish_pending()` drains the outbox (lease renewed before
   every batch, one transaction per batch of `relay_batch_size` rows, rows marked sent
   after each commit). Three runs each (the rows are reset to unsent between relay runs,
   on a new prefix).

Figures, never assertions: rows per second of both, and their ratio.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.events.envelope import Envelope
from shared.events.examples import EXAMPLES
from shared.events.site_registry import SiteRegistered
from tests.bench.bench_campaigns import delete_topics, drop_databases, say
from tests.bench.infra import on_real_infrastructure
from tests.support.infra import Broker, Database

ROWS = int(os.environ.get("BENCH_RELAY_ROWS", "20000"))
RUNS = int(os.environ.get("BENCH_RELAY_RUNS", "3"))
BATCH = int(os.environ.get("BENCH_RELAY_BATCH", "500"))  # the relay's default batch
SECRET = "bench-relay-secret-of-at-least-32-characters"


def _rows(n: int) -> list[dict[str, Any]]:
    from services.site_registry.domain.siret import make_siret
    from shared.events.catalogue import topic_of

    base = EXAMPLES[SiteRegistered]
    rows = []
    for i in range(n):
        siret = make_siret(f"{10_000_000 + i:08d}", "0001")
        payload = base.model_copy(update={"site_id": siret, "siren": siret[:9], "name": None})
        env = Envelope.new(payload, source="bench-generator")
        rows.append(
            {
                "event_id": env.id,
                "topic": topic_of(payload).name,
                "key": env.subject,
                "event_type": env.type,
                "headers": [[k, v.decode()] for k, v in env.headers()],
                "payload": env.value().decode(),
                "created_at": env.time,
            }
        )
    return rows


async def _bench(broker: Broker, database: Database) -> dict[str, Any]:
    import sqlalchemy as sa

    from services.site_registry.bootstrap import bootstrap
    from services.site_registry.settings import SiteRegistrySettings
    from shared.events.catalogue import SITES
    from shared.messaging.kafka import ensure_topics
    from shared.messaging.tables import OutboxEvent

    name = f"bench_relay_{uuid.uuid4().hex[:8]}"
    url = await database.create_database(name)
    rows = _rows(ROWS)
    prefixes: list[str] = []
    raw: list[float] = []
    relay: list[float] = []
    try:
        for run in range(RUNS):
            prefix = f"benchrelay{uuid.uuid4().hex[:6]}."
            prefixes.append(prefix)
            await ensure_topics(broker.bootstrap_servers, [SITES], prefix=prefix)
            await ensure_topics(broker.bootstrap_servers, [SITES], prefix=prefix + "raw.")
            prefixes.append(prefix + "raw.")
            producer = AIOKafkaProducer(
                bootstrap_servers=broker.bootstrap_servers,
                enable_idempotence=True,
                acks="all",
                linger_ms=5,
            )
            await producer.start()
            started = time.perf_counter()
            futures = [
                await producer.send(
                    prefix + "raw." + r["topic"],
                    r["payload"].encode(),
                    key=r["key"].encode(),
                    headers=[(k, v.encode()) for k, v in r["headers"]],
                )
                for r in rows
            ]
            await asyncio.gather(*futures)
            raw.append(time.perf_counter() - started)
            await producer.stop()

            settings = SiteRegistrySettings(
                environment="test",
                jwt_secret=SECRET,  # type: ignore[arg-type]
                database_url=url,
                kafka_bootstrap_servers=broker.bootstrap_servers,
                kafka_topic_prefix=prefix,
                relay_batch_size=BATCH,
            )
            registry = bootstrap(settings)
            await registry.migrate()
            async with registry.engine.begin() as conn:
                await conn.execute(sa.delete(OutboxEvent))
                await conn.execute(sa.insert(OutboxEvent), rows)
            started = time.perf_counter()
            published = await registry.relay.publish_pending()
            relay.append(time.perf_counter() - started)
            assert published == ROWS, (published, ROWS)
            await registry.aclose()
            say(f"relay run {run + 1}: raw {raw[-1]:.2f} s, relay {relay[-1]:.2f} s")
    finally:
        await delete_topics(broker.bootstrap_servers, prefixes)
        await drop_databases(database, [name])
    raw_s, relay_s = statistics.median(raw), statistics.median(relay)
    return {
        "rows": ROWS,
        "runs": RUNS,
        "batch_size": BATCH,
        "raw_aiokafka_seconds": [round(x, 3) for x in raw],
        "relay_seconds": [round(x, 3) for x in relay],
        "raw_rows_per_s": round(ROWS / raw_s),
        "relay_rows_per_s": round(ROWS / relay_s),
        "relay_over_raw_time": round(relay_s / raw_s, 2),
    }


def run() -> dict[str, Any]:
    result = figures = on_real_infrastructure(_bench)
    print(
        f"[bench] outbox relay, {ROWS:,} GENERATED rows, {RUNS} runs, {result['broker']},"
        f" {result['database']}:\n"
        f"  raw aiokafka producer (baseline): median {ROWS / figures['raw_rows_per_s']:.2f} s,"
        f" {figures['raw_rows_per_s']:,} rows/s\n"
        f"  relay (lease + one transaction per {BATCH}-row batch + mark sent): median"
        f" {ROWS / figures['relay_rows_per_s']:.2f} s, {figures['relay_rows_per_s']:,} rows/s\n"
        f"  relay time / raw time: {figures['relay_over_raw_time']}",
        flush=True,
    )
    return result
