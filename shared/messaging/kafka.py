"""Kafka clients configured the one way this system uses them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.events.catalogue import Topic


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    # Idempotence gives acks=all and per-partition order across the producer's retries;
    # without it aiokafka defaults to acks=1 (a leader crash can lose an "acked" event).
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=30_000,
    )


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[Topic],
    *,
    prefix: str = "",
    replication_factor: int = 1,
    with_dlq: bool = True,
) -> list[str]:
    """Create the topics (and their dead-letter topics) that do not exist yet."""
    wanted: dict[str, int] = {}
    for topic in topics:
        wanted[topic.physical(prefix)] = topic.partitions
        if with_dlq:
            wanted[topic.physical_dlq(prefix)] = 1
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=name, num_partitions=parts, replication_factor=replication_factor)
            for name, parts in wanted.items()
            if name not in existing
        ]
        if missing:
            # Another service may create it meanwhile: that is the goal anyway.
            with contextlib.suppress(TopicAlreadyExistsError):
                response = await admin.create_topics(missing)
                _raise_refusals(response)
        await _wait_for_metadata(admin, set(wanted))
    finally:
        await admin.close()
    return sorted(wanted)


_TOPIC_ALREADY_EXISTS = 36


def _raise_refusals(response: object) -> None:
    """Say why the broker refused a topic (too many replicas for the cluster, no right to
    create…) instead of timing out later on "topic not visible"."""
    refused = []
    for entry in getattr(response, "topic_errors", None) or ():
        topic, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else ""
        if code not in (0, _TOPIC_ALREADY_EXISTS):
            refused.append(f"{topic}: error {code} {message or ''}".strip())
    if refused:
        raise RuntimeError("the broker refused to create topics: " + "; ".join(refused))


async def _wait_for_metadata(admin: AIOKafkaAdminClient, names: set[str]) -> None:
    # A freshly created topic is not instantly visible to every client; waiting here
    # keeps producers and consumers that start next from seeing "unknown topic".
    for _ in range(100):
        if names <= set(await admin.list_topics()):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"topics not visible after creation: {sorted(names)}")
