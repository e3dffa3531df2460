"""Clients authenticate with SASL when configured: a broker with a SASL/PLAIN listener,
the project's producer factory with `KafkaAccess`, a wrong password refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from shared.events.catalogue import SITES
from shared.infra.kafka_local import LocalKafka
from shared.messaging.kafka import KafkaAccess, ensure_topics, make_producer
from tests.support.infra import Broker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sasl_broker(broker: Broker) -> Iterator[LocalKafka]:
    # A broker of its own: the session's broker may be external or have no SASL listener.
    kafka = LocalKafka(sasl_users={"rebond": "s3cret-of-the-test"}).start()
    yield kafka
    kafka.stop()


async def test_producer_and_consumer_authenticate_with_sasl(sasl_broker: LocalKafka) -> None:
    access = KafkaAccess(
        sasl_broker.sasl_bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="rebond",
        sasl_password="s3cret-of-the-test",
    )
    prefix = f"sasl{uuid.uuid4().hex[:6]}."
    await ensure_topics(access, [SITES], prefix=prefix)
    producer = make_producer(access, "sasl-test")
    await producer.start()
    try:
        await producer.send_and_wait(SITES.physical(prefix), b"{}", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        SITES.physical(prefix),
        **access.client_kwargs(),
        group_id=f"g{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        record = await consumer.getone()
        assert record.value == b"{}"
    finally:
        await consumer.stop()


async def test_a_wrong_password_is_refused(sasl_broker: LocalKafka) -> None:
    wrong = KafkaAccess(
        sasl_broker.sasl_bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_username="rebond",
        sasl_password="not-the-password",
    )
    producer = make_producer(wrong, "sasl-wrong")
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()
