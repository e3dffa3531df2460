"""The consumer runner: at-least-once delivery turned into exactly-once effects.

For each message: decode the envelope, then in ONE database transaction insert the inbox
row `(consumer, event id)` and run the handler; commit the database, and only then the
Kafka offset. A redelivered message finds its inbox row and changes nothing.

A failing handler is retried with exponential backoff; after `max_attempts`, or at once
for a message that can never succeed (malformed, or a `PermanentError`), the message goes
to the topic's dead-letter topic with the reason in its headers, and the partition moves
on. If even the dead-letter write fails, the offset is not committed: nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.events.catalogue import Topic
from shared.events.envelope import Envelope, EventPayload, MalformedEvent, decode
from shared.logging import bind_correlation, get_logger
from shared.messaging.kafka import KafkaAccess, access_of
from shared.messaging.unit_of_work import SqlUnitOfWork

log = get_logger(__name__)

U = TypeVar("U", bound=SqlUnitOfWork)
Handler = Callable[[U, Envelope[Any]], Awaitable[None]]


class PermanentError(Exception):
    """Raised by a handler for a message that no retry can fix (it is dead-lettered)."""


# Dead-letter headers: the original headers are kept, these are added.
DLQ_REASON = "dlq_reason"
DLQ_ERROR_TYPE = "dlq_error_type"
DLQ_CONSUMER = "dlq_consumer"
DLQ_TOPIC = "dlq_original_topic"
DLQ_PARTITION = "dlq_original_partition"
DLQ_OFFSET = "dlq_original_offset"
DLQ_ATTEMPTS = "dlq_attempts"
DLQ_TIME = "dlq_time"


@dataclass
class ConsumerStats:
    processed: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    retries: int = 0


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner[Any]) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._runner.commit_offsets()

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        return None


class ConsumerRunner(Generic[U]):
    def __init__(
        self,
        *,
        name: str,
        topics: Sequence[Topic],
        handlers: Mapping[str, Handler[U]],
        uow_factory: Callable[[], U],
        registry: Mapping[str, type[EventPayload]],
        bootstrap_servers: KafkaAccess | str,
        producer_factory: Callable[[], AIOKafkaProducer],
        topic_prefix: str = "",
        max_attempts: int = 5,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        batch_size: int = 200,
    ) -> None:
        self.name = name
        self._topics = {t.physical(topic_prefix): t for t in topics}
        self._handlers = handlers
        self._uow_factory = uow_factory
        self._registry = registry
        self._bootstrap = bootstrap_servers
        self._producer_factory = producer_factory
        self._max_attempts = max_attempts
        self._backoff = backoff_s
        self._max_backoff = max_backoff_s
        self._batch_size = batch_size
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq: AIOKafkaProducer | None = None
        self._pending: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self.stats = ConsumerStats()
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self._dlq = self._producer_factory()
        await self._dlq.start()
        self._consumer = AIOKafkaConsumer(
            **access_of(self._bootstrap).client_kwargs(),
            group_id=self.name,
            client_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._batch_size,
        )
        self._consumer.subscribe(list(self._topics), listener=_CommitOnRevoke(self))
        await self._consumer.start()

    async def stop(self) -> None:
        self._stopping.set()
        if self._consumer is not None:
            # on_partitions_revoked is not called by stop(): commit first (aiokafka docs).
            with contextlib.suppress(Exception):
                await self.commit_offsets()
            await self._consumer.stop()
            self._consumer = None
        if self._dlq is not None:
            await self._dlq.stop()
            self._dlq = None

    async def run(self) -> None:
        if self._consumer is None:
            await self.start()
        assert self._consumer is not None
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(timeout_ms=200)
            if self._consumer.assignment():
                self.ready.set()
            for tp, records in batches.items():
                for record in records:
                    if self._stopping.is_set():
                        break
                    await self.process(record)
                    self._pending[tp] = record.offset + 1
                await self.commit_offsets()

    async def commit_offsets(self) -> None:
        if self._consumer is None or not self._pending:
            return
        offsets, self._pending = dict(self._pending), {}
        assigned = self._consumer.assignment()
        offsets = {tp: off for tp, off in offsets.items() if tp in assigned}
        if offsets:
            await self._consumer.commit(offsets)

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Handle one record to its end: effect committed, ignored, or dead-lettered."""
        structlog.contextvars.bind_contextvars(
            topic=record.topic, partition=record.partition, offset=record.offset
        )
        try:
            envelope = decode(record.headers, record.value, self._registry)
        except MalformedEvent as exc:
            await self._dead_letter(record, exc, attempts=1)
            return
        structlog.contextvars.bind_contextvars(event_id=str(envelope.id), event_type=envelope.type)
        bind_correlation(envelope.correlation_id, str(envelope.id))
        handler = self._handlers.get(envelope.type)
        if handler is None:
            self.stats.ignored += 1  # another consumer's business on a shared topic
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._apply(handler, envelope, record)
                return
            except PermanentError as exc:
                await self._dead_letter(record, exc, attempts=attempt)
                return
            except Exception as exc:
                if attempt >= self._max_attempts or self._stopping.is_set():
                    if self._stopping.is_set():
                        raise  # not dead-lettered, not committed: redelivered after restart
                    await self._dead_letter(record, exc, attempts=attempt)
                    return
                self.stats.retries += 1
                delay = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
                log.warning(
                    "handler failed, retrying", attempt=attempt, delay_s=delay, error=repr(exc)
                )
                await asyncio.sleep(delay)

    async def _apply(
        self, handler: Handler[U], envelope: Envelope[Any], record: ConsumerRecord[bytes, bytes]
    ) -> None:
        async with self._uow_factory() as uow:
            fresh = await uow.record_inbox(
                self.name,
                envelope,
                topic=self._topics[record.topic].name
                if record.topic in self._topics
                else record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            if not fresh:
                self.stats.duplicates += 1
                log.info("duplicate event ignored")
                return
            await handler(uow, envelope)
            await uow.commit()
        self.stats.processed += 1

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], exc: BaseException, *, attempts: int
    ) -> None:
        # The physical topic already carries the deployment prefix.
        dlq_name = f"{record.topic}.dlq"
        reason = str(exc) or exc.__class__.__name__
        extra = {
            DLQ_REASON: reason[:2000],
            DLQ_ERROR_TYPE: exc.__class__.__name__,
            DLQ_CONSUMER: self.name,
            DLQ_TOPIC: record.topic,
            DLQ_PARTITION: str(record.partition),
            DLQ_OFFSET: str(record.offset),
            DLQ_ATTEMPTS: str(attempts),
            DLQ_TIME: datetime.now(UTC).isoformat(),
        }
        headers = [(k, v) for k, v in (record.headers or ()) if k not in extra]
        headers += [(k, v.encode()) for k, v in extra.items()]
        assert self._dlq is not None
        # Awaited to the broker's ack: if this raises, the offset stays uncommitted.
        await self._dlq.send_and_wait(dlq_name, value=record.value, key=record.key, headers=headers)
        self.stats.dead_lettered += 1
        log.error(
            "message dead-lettered",
            reason=reason,
            error_type=exc.__class__.__name__,
            attempts=attempts,
            trace="".join(traceback.format_exception(exc))[-2000:],
        )
