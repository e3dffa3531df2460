"""Reading topics from the beginning to their current end, outside any consumer group:
how a projection is rebuilt from the events it was built from."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.events.envelope import Envelope, EventPayload, MalformedEvent, decode
from shared.logging import get_logger
from shared.messaging.kafka import KafkaAccess, access_of

log = get_logger(__name__)


@dataclass
class ReplayReport:
    messages: int = 0
    events: int = 0
    malformed: int = 0
    seconds: float = 0.0


async def records_to_end(
    access: KafkaAccess | str, topics: Sequence[str], *, batch_size: int = 2000
) -> AsyncGenerator[list[ConsumerRecord[bytes, bytes]], None]:
    """Every committed record of `topics`, from the beginning up to the end offsets taken
    at the start, in batches (partition order kept within a batch). No consumer group is
    joined: nothing is committed, nobody's partitions are taken."""
    consumer = AIOKafkaConsumer(
        **access_of(access).client_kwargs(),
        enable_auto_commit=False,
        max_poll_records=batch_size,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        isolation_level="read_committed",  # never an aborted relay batch
    )
    try:
        await consumer.start()
        cluster = await consumer._client.fetch_all_metadata()
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        records: list[ConsumerRecord[bytes, bytes]] = []
        while remaining:
            # A fetch returns what one partition's response held (often a few records):
            # gathered up to `batch_size`, so that the handler's statements carry
            # thousands of rows instead of a round trip per handful. Records are appended
            # in fetch order: each partition's order holds.
            batches = await consumer.getmany(
                *remaining, timeout_ms=500, max_records=batch_size - len(records)
            )
            records += [
                record
                for tp, batch in batches.items()
                for record in batch
                if record.offset < ends[tp]
            ]
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if records and (len(records) >= batch_size or not remaining):
                yield records
                records = []
    finally:
        await consumer.stop()


async def replay(
    access: KafkaAccess | str,
    topics: Sequence[str],
    registry: Mapping[str, type[EventPayload]],
    on_batch: Callable[[list[Envelope[EventPayload]]], Awaitable[None]],
    *,
    batch_size: int = 2000,
) -> ReplayReport:
    """Decode every message up to the end offsets taken at the start and hand them to
    `on_batch` in batches (partition order kept within a batch). Malformed messages are
    counted and skipped: they already went to a dead-letter topic when first consumed."""
    started = time.perf_counter()
    report = ReplayReport()
    # `on_batch` of batch N runs while batch N+1 is fetched and decoded: its statements
    # wait on the database (another process, another core) while this one decodes. One
    # batch in flight at most, awaited before the next starts: batches are handed over
    # in order, one at a time, and a failure stops the replay at that batch.
    in_flight: asyncio.Task[None] | None = None
    try:
        async with contextlib.aclosing(records_to_end(access, topics, batch_size=batch_size)) as it:
            async for records in it:
                envelopes: list[Envelope[EventPayload]] = []
                for record in records:
                    report.messages += 1
                    try:
                        envelopes.append(decode(record.headers, record.value, registry))
                    except MalformedEvent:
                        report.malformed += 1
                if in_flight is not None:
                    await in_flight
                    in_flight = None
                if envelopes:
                    report.events += len(envelopes)
                    in_flight = asyncio.ensure_future(on_batch(envelopes))
        if in_flight is not None:
            await in_flight
            in_flight = None
    finally:
        if in_flight is not None:  # the replay failed: the batch in flight goes no further
            in_flight.cancel()
            with contextlib.suppress(BaseException):
                await in_flight
    report.seconds = time.perf_counter() - started
    return report
