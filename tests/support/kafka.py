"""Reading topics the way an outside client would: a plain aiokafka consumer, no project
code, from the beginning of the topic, with `isolation_level="read_committed"` as the
AsyncAPI document asks of every reader (the relay publishes in transactions)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


def _message(r: Any) -> Message:
    headers = {k: (v or b"").decode() for k, v in r.headers}
    return Message(r.topic, r.partition, r.offset, r.key, r.value, headers)


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[Message]], bool],
    timeout: float = 30.0,
) -> list[Message]:
    """Read `topic` from offset 0 until `until(messages)` holds, or fail on timeout."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(messages):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{topic}: condition not met within {timeout}s; {len(messages)} messages"
                    f" read: {[m.headers.get('ce_type') for m in messages][:20]}"
                )
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                messages.extend(_message(r) for r in records)
        return messages
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str, *, timeout: float = 30.0) -> list[Message]:
    """Everything on `topic` now: reads up to the end offsets taken when called. With the
    outbox drained first, this proves an absence without sleeping."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            raise AssertionError(f"topic {topic} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        messages: list[Message] = []
        deadline = time.monotonic() + timeout
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: could not read to the end within {timeout}s")
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                messages.extend(_message(r) for r in records)
        return sorted(messages, key=lambda m: (m.partition, m.offset))
    finally:
        await consumer.stop()


async def lag(bootstrap: str, group: str, topics: list[str]) -> int:
    """Messages of `topics` not yet committed by `group` (read_committed end offsets: a
    caught-up group has no lag, transaction markers included)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await admin.start()
    await consumer.start()
    try:
        committed = {
            tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()
        }
        cluster = await consumer._client.fetch_all_metadata()
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(cluster.partitions_for_topic(t) or ())
        ]
        ends = await consumer.end_offsets(tps) if tps else {}
        return sum(max(0, end - max(0, committed.get(tp, 0))) for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()
