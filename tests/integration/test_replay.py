"""`replay` on the real broker: every message up to the end, decoded and folded in this
process or in worker processes, malformed ones counted and skipped, batches handed over
in order, and a failing fold failing the replay."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.site_registry.domain.siret import make_siret
from shared.events.catalogue import SITES, event_registry
from shared.events.envelope import Envelope, EventPayload
from shared.events.examples import EXAMPLES
from shared.events.site_registry import SiteRegistered
from shared.messaging.replay import envelopes, replay
from tests.support.infra import Broker

PARTITIONS = 3
GOOD = 60


def site_ids(batch: list[Envelope[EventPayload]]) -> list[str]:
    """A module-level fold (worker processes import it): the subjects, in order."""
    return [e.subject for e in batch]


def refuse(batch: list[Envelope[EventPayload]]) -> list[str]:
    raise RuntimeError("this fold refuses every batch")


async def _topic_with_poison(bootstrap: str) -> tuple[str, dict[str, list[str]]]:
    """GOOD site events over 3 partitions, and 3 malformed messages among them; returns
    the topic and, per key, the subjects in the order they were sent."""
    topic = f"t{uuid.uuid4().hex[:10]}.replay"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    sent: dict[str, list[str]] = {}
    try:
        base = EXAMPLES[SiteRegistered]
        for i in range(GOOD):
            key = f"k{i % 7}"
            siret = make_siret(f"{20_000_000 + i:08d}", "0001")
            payload = base.model_copy(update={"site_id": siret, "siren": siret[:9]})
            env = Envelope.new(payload, source="test-generator")
            await producer.send_and_wait(
                topic, env.value(), key=key.encode(), headers=env.headers()
            )
            sent.setdefault(key, []).append(env.subject)
            if i % 20 == 10:  # not JSON; then no headers at all
                await producer.send_and_wait(
                    topic, b"{not json", key=key.encode(), headers=env.headers()
                )
        await producer.send_and_wait(topic, b"{}", key=b"k0", headers=[])
    finally:
        await producer.stop()
    return topic, sent


@pytest.mark.parametrize("workers", [0, 2])
async def test_replay_reads_everything_skips_the_malformed_and_keeps_the_order(
    broker: Broker, workers: int
) -> None:
    topic, sent = await _topic_with_poison(broker.bootstrap_servers)
    batches: list[list[str]] = []
    decoded: list[Envelope[EventPayload]] = []

    async def keep(batch: list[str]) -> None:
        batches.append(batch)

    report = await replay(
        broker.bootstrap_servers,
        [topic],
        event_registry([SITES]),
        keep,
        fold=site_ids,
        batch_size=16,  # several batches, so that several are decoded ahead
        workers=workers,
    )
    assert report.messages == GOOD + 4
    assert report.malformed == 4
    assert report.events == GOOD
    assert sum(len(b) for b in batches) == GOOD
    assert len(batches) >= GOOD // 16
    key_of = {subject: key for key, subjects in sent.items() for subject in subjects}
    handed = [s for b in batches for s in b]
    for key, subjects in sent.items():  # one key, one partition: its order holds
        assert [s for s in handed if key_of[s] == key] == subjects

    async def keep_envelopes(batch: list[Envelope[EventPayload]]) -> None:
        decoded.extend(batch)

    again = await replay(
        broker.bootstrap_servers,
        [topic],
        event_registry([SITES]),
        keep_envelopes,
        fold=envelopes,
        batch_size=16,
        workers=workers,
    )
    assert again.events == GOOD
    # The same messages, each key's in the order it was sent (partitions interleave as
    # their fetches come back: that order is not the same from one replay to the next).
    subjects = [e.subject for e in decoded]
    assert sorted(subjects) == sorted(handed)
    for key, sent_subjects in sent.items():
        assert [s for s in subjects if key_of[s] == key] == sent_subjects


async def test_a_fold_failing_in_a_worker_fails_the_replay(broker: Broker) -> None:
    topic, _ = await _topic_with_poison(broker.bootstrap_servers)
    handed: list[list[str]] = []

    async def keep(batch: list[str]) -> None:
        handed.append(batch)

    with pytest.raises(RuntimeError, match="refuses every batch"):
        await replay(
            broker.bootstrap_servers,
            [topic],
            event_registry([SITES]),
            keep,
            fold=refuse,
            workers=1,
        )
    assert handed == []
