"""The consumer runner: at-least-once delivery turned into exactly-once effects.

For each message: decode the envelope, then in ONE database transaction insert the inbox
row `(consumer, event id, business key)` and run the handler; commit the database, and
only then the Kafka offset. A redelivered message (same id), or the same business fact
re-sent under a new id, finds its inbox row and changes nothing.

Messages come in batches: the consecutive messages of one partition in a fetch (up to
`transaction_size`) share that transaction — their inbox rows in one statement, each handler in
turn (each one's writes flushed before the next runs), one commit — and the fetch's
offsets are committed once, after it. A batch that fails is rolled back whole and its
messages handled again one transaction each, so a poison message is dealt with alone
(below) and the others are applied once. `transaction_size=1` is one transaction per
message. The partitions of a fetch are processed concurrently, each in its own order and
transactions, as several members of the group would (`concurrent_partitions`).

Failures are of two kinds, told apart by `shared.transient.is_transient`:

- **Transient** (the database or the broker unreachable, a connection reset, a
  serialization failure, a lock timeout): the message is not at fault and is never
  dead-lettered. The runner rewinds to it, pauses its partitions (still polling, so it
  stays in its group), backs off, and tries again until the dependency returns —
  reporting itself not ready (`problem`) meanwhile.
- **The message's** (a `PermanentError`, a message that cannot be decoded, or a handler
  that keeps failing for another reason after `max_attempts`): the message goes to the
  topic's dead-letter topic with the reason in its headers, and the partition moves on.
  If even the dead-letter write fails, that is transient: nothing is committed, nothing
  is lost.

A message of an event type this reader does not know, on a topic whose owner may add
types in a newer release (`rebond.<owner>.…`), is skipped, not dead-lettered: tolerant
readers. Messages can be put back through their handler with `redrive`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import functools
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace

from shared.events.catalogue import Topic
from shared.events.envelope import (
    H_TYPE,
    Envelope,
    EventPayload,
    MalformedEvent,
    UnknownEventType,
    decode,
)
from shared.logging import Throttled, bind_correlation, get_logger
from shared.messaging.kafka import KafkaAccess, access_of
from shared.messaging.unit_of_work import SqlUnitOfWork
from shared.tracing import consumer_span, context_from_kafka, context_from_mapping
from shared.transient import describe, is_transient

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
DLQ_HEADERS = (
    DLQ_REASON,
    DLQ_ERROR_TYPE,
    DLQ_CONSUMER,
    DLQ_TOPIC,
    DLQ_PARTITION,
    DLQ_OFFSET,
    DLQ_ATTEMPTS,
    DLQ_TIME,
)


class Outcome(enum.Enum):
    PROCESSED = "processed"  # the effect committed
    DUPLICATE = "duplicate"  # already applied (same event id or business key)
    IGNORED = "ignored"  # not this consumer's business
    DEAD_LETTERED = "dead_lettered"  # the message's fault: in the DLQ with its reason
    FAILED = "failed"  # the message's fault, not dead-lettered (a re-drive that failed)
    TRANSIENT = "transient"  # the infrastructure's fault: not done, to be retried


@dataclass
class ConsumerStats:
    processed: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    retries: int = 0
    transient_pauses: int = 0
    batch_fallbacks: int = 0  # batches rolled back and handled one message at a time


@dataclass(frozen=True)
class _Prepared(Generic[U]):
    """A decoded record this consumer handles, waiting in a batch."""

    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope[Any]
    handler: Handler[U]


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner[Any]) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        with contextlib.suppress(Exception):  # a failed commit only means a redelivery
            await self._runner.commit_offsets()

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        # Which replica reads what, after each rebalance: the first thing to look at when
        # a partition's lag grows.
        log.info(
            "consumer partitions assigned",
            consumer=self._runner.name,
            partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned),
        )


def _owner_of(topic_name: str) -> str | None:
    parts = topic_name.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "rebond" else None


def _in_consumer_span(
    process: Callable[[ConsumerRunner[U], ConsumerRecord[bytes, bytes]], Awaitable[Outcome]],
) -> Callable[[ConsumerRunner[U], ConsumerRecord[bytes, bytes]], Awaitable[Outcome]]:
    """`ConsumerRunner.process` in a CONSUMER span whose parent is the record's context."""

    @functools.wraps(process)
    async def traced(self: ConsumerRunner[U], record: ConsumerRecord[bytes, bytes]) -> Outcome:
        with self._span(record) as span:
            outcome = await process(self, record)
            span.set_attribute("rebond.consumer.outcome", outcome.value)
            return outcome

    return traced


def message_span_describes(envelope: Envelope[Any]) -> None:
    """The current (message) span names the event it processes."""
    trace.get_current_span().set_attributes(
        {
            "messaging.message.id": str(envelope.id),
            "cloudevents.event_id": str(envelope.id),
            "cloudevents.event_type": envelope.type,
        }
    )


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
        transient_backoff_s: float = 0.5,
        max_transient_backoff_s: float = 30.0,
        batch_size: int = 200,
        transaction_size: int | None = None,
        max_transaction_s: float = 0.5,
        concurrent_partitions: bool = False,
        session_timeout_ms: int = 10_000,
        max_poll_interval_ms: int = 300_000,
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
        self._transient_backoff = transient_backoff_s
        self._max_transient_backoff = max_transient_backoff_s
        self._batch_size = batch_size  # records per fetch
        # consecutive records of a partition applied per transaction (1: each alone)
        self._transaction_size = max(1, transaction_size or batch_size)
        self._max_transaction_s = max_transaction_s
        self._chunk = self._transaction_size  # adapted to the records' pace
        self._concurrent_partitions = concurrent_partitions
        self._session_timeout_ms = session_timeout_ms
        self._max_poll_interval_ms = max_poll_interval_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq: AIOKafkaProducer | None = None
        self._pending: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._trouble = Throttled(log)
        self._transient_since: float | None = None
        self._pauses = 0  # consecutive pauses: the backoff's exponent
        self.stats = ConsumerStats()
        #: (logical topic, event type, outcome) → messages (for /metrics)
        self.counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        #: partition → the next offset to handle, as far as this process got (for the lag)
        self._handled: dict[TopicPartition, int] = {}
        self._last_poll: float | None = None  # monotonic time the loop last polled
        self.ready = asyncio.Event()
        #: why this consumer is not making progress (None when it is): readiness says it
        self.problem: str | None = None

    @property
    def topics(self) -> Mapping[str, Topic]:
        """physical topic name → catalogue topic"""
        return self._topics

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
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(1000, self._session_timeout_ms // 3),
            max_poll_interval_ms=self._max_poll_interval_ms,
            # The relay publishes in transactions: an aborted batch (a fenced, hung relay)
            # must never reach a handler.
            isolation_level="read_committed",
        )
        self._consumer.subscribe(list(self._topics), listener=_CommitOnRevoke(self))
        await self._consumer.start()

    async def stop(self, *, grace_s: float = 5.0) -> None:
        """Stop consuming (SIGTERM, a clean exit): the transaction in hand is finished and
        committed, the offsets of what was done are committed, and the group is left at
        once (its partitions go to the other members now, not after the session timeout).
        `grace_s` bounds the wait for run() to finish; what it had not done is redelivered
        (the inbox makes a re-handled message harmless)."""
        self._stopping.set()
        running: asyncio.Task[Any] | None = getattr(self, "_run_task", None)
        if running is not None and not running.done() and running is not asyncio.current_task():
            await asyncio.wait({running}, timeout=grace_s)  # not cancelled: bounded only
        if self._consumer is not None:
            # on_partitions_revoked is not called by stop(): commit first (aiokafka docs).
            with contextlib.suppress(Exception):
                await self.commit_offsets()
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None
        if self._dlq is not None:
            with contextlib.suppress(Exception):
                await self._dlq.stop()
            self._dlq = None

    async def run(self) -> None:
        if self._consumer is None:
            await self.start()
        assert self._consumer is not None
        consumer = self._consumer
        self._run_task = asyncio.current_task()  # stop() waits for the loop's end
        while not self._stopping.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=200)
                self._last_poll = time.monotonic()
            except Exception as exc:  # the broker: aiokafka reconnects by itself
                if self._stopping.is_set():
                    break
                self._trouble.failure("poll", "consumer poll failed", error=describe(exc))
                await asyncio.sleep(min(self._max_transient_backoff, self._transient_backoff))
                continue
            if consumer.assignment():
                self.ready.set()
            items = list(batches.items())
            for tp, records in items:  # fetched is not handled: the lag counts them
                if records:
                    self._handled[tp] = records[0].offset
            dones = await self._process_fetch(items)
            stalled = False
            assigned = consumer.assignment()
            for (tp, records), done in zip(items, dones, strict=True):
                if done:
                    self._pending[tp] = records[done - 1].offset + 1
                    self._handled[tp] = self._pending[tp]
                if done < len(records):
                    # Not done (a transient failure, a partition not reached after it, or
                    # stopping): fetched again after the pause, or by whoever reads next.
                    if not self._stopping.is_set():
                        if tp in assigned:
                            consumer.seek(tp, records[done].offset)
                        stalled = True
                elif records:
                    # Past the transaction markers too, so that a caught-up group shows no
                    # lag (position is where this fetch ended, markers skipped).
                    with contextlib.suppress(Exception):
                        self._pending[tp] = max(self._pending[tp], await consumer.position(tp))
                        self._handled[tp] = self._pending[tp]
            try:
                await self.commit_offsets()
            except Exception as exc:
                # Not committed means redelivered: the inbox makes that harmless.
                self._trouble.failure("commit", "offset commit failed", error=describe(exc))
            if stalled and not self._stopping.is_set():
                await self._pause_for_backoff()

    async def _process_fetch(
        self, items: Sequence[tuple[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]]
    ) -> list[int]:
        """How many records of each partition of a fetch reached their end. Partitions are
        independent (each one in order): processed concurrently, each in transactions of
        its own, as several members of the group would — or one after the other, the
        first failure stopping the rest."""
        if self._concurrent_partitions and len(items) > 1:
            # Each one to its end, even when another fails: none is left mid-transaction.
            results = await asyncio.gather(
                *(self.process_many(r) for _, r in items), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            return [r for r in results if isinstance(r, int)]
        dones: list[int] = []
        for _, records in items:
            if self._stopping.is_set() or (dones and dones[-1] < len(items[len(dones) - 1][1])):
                dones.append(0)
                continue
            dones.append(await self.process_many(records))
        return dones

    async def _pause_for_backoff(self) -> None:
        """Pause every partition but keep polling (so the group keeps this member and the
        heartbeat flows) for the backoff, then resume: the failed message comes again."""
        assert self._consumer is not None
        self.stats.transient_pauses += 1
        self._pauses += 1
        now = time.monotonic()
        if self._transient_since is None:
            self._transient_since = now
        down_for = now - self._transient_since
        delay = min(
            self._max_transient_backoff,
            self._transient_backoff * 2 ** min(10, self._pauses - 1),
        )
        partitions = list(self._consumer.assignment())
        self._consumer.pause(*partitions)
        try:
            deadline = time.monotonic() + delay
            while not self._stopping.is_set() and time.monotonic() < deadline:
                remaining = max(0.0, deadline - time.monotonic())
                await self._consumer.getmany(timeout_ms=int(min(remaining, 1.0) * 1000) or 1)
                self._last_poll = time.monotonic()  # paused, not stuck: the group keeps it
        finally:
            if self._consumer is not None:
                self._consumer.resume(*self._consumer.assignment())
        log.debug("consumer resumes after a transient failure", down_for_s=round(down_for, 1))

    def _transient(self, exc: BaseException) -> Outcome:
        # Shown by /readyz without authentication: the error's type, not its text.
        self.problem = f"{self.name}: waiting for a dependency ({type(exc).__name__})"
        self._trouble.failure(
            "transient",
            "infrastructure failure: message kept, consumer paused and retrying",
            error=describe(exc),
        )
        return Outcome.TRANSIENT

    def _healthy(self) -> None:
        if self.problem is not None:
            since = self._transient_since
            self._trouble.recovered(
                "transient",
                "dependency back: consumer resumed",
                down_for_s=round(time.monotonic() - since, 1) if since else None,
            )
            self.problem = None
            self._transient_since = None
            self._pauses = 0

    async def commit_offsets(self) -> None:
        if self._consumer is None or not self._pending:
            return
        offsets, self._pending = dict(self._pending), {}
        assigned = self._consumer.assignment()
        offsets = {tp: off for tp, off in offsets.items() if tp in assigned}
        if offsets:
            await self._consumer.commit(offsets)

    def _count(
        self,
        topic: str,
        event_type: str,
        outcome: Outcome = Outcome.PROCESSED,
        *,
        fresh: bool | None = None,
    ) -> None:
        if fresh is not None:
            outcome = Outcome.PROCESSED if fresh else Outcome.DUPLICATE
        self.counts[(self._catalogue_name(topic), event_type, outcome.value)] += 1

    def seconds_since_poll(self) -> float | None:
        """Since the loop last polled the broker; None before its first poll."""
        return None if self._last_poll is None else time.monotonic() - self._last_poll

    @property
    def stuck(self) -> str | None:
        """Why the consumer counts as stuck (its loop has not polled for longer than the
        poll interval: the group has dropped it, or is about to), None when it polls."""
        since = self.seconds_since_poll()
        limit = self._max_poll_interval_ms / 1000
        if since is None or self._stopping.is_set() or since <= limit:
            return None
        return f"{self.name}: no poll for {since:.0f} s (poll interval {limit:.0f} s)"

    async def lag(self) -> dict[tuple[str, int], int]:
        """(logical topic, partition) → messages of each assigned partition this process
        has not handled yet: the broker's high-water mark minus our position."""
        consumer = self._consumer
        if consumer is None:
            return {}
        lags: dict[tuple[str, int], int] = {}
        for tp in sorted(consumer.assignment()):
            high = consumer.highwater(tp)
            if high is None:  # not fetched yet: unknown, not zero
                continue
            position = self._handled.get(tp)
            if position is None:
                position = await consumer.position(tp)
            lags[(self._catalogue_name(tp.topic), tp.partition)] = max(0, high - position)
        return lags

    async def dead_letter_depths(self) -> dict[str, int]:
        """Dead-letter topic (logical name) → messages it holds: the end offsets minus the
        earliest kept, over its partitions. Whole topics, whoever dead-lettered them."""
        consumer = self._consumer
        if consumer is None:
            return {}
        partitions: list[TopicPartition] = []
        for physical in self._topics:
            dlq = f"{physical}.dlq"
            known = consumer.partitions_for_topic(dlq)
            partitions += [TopicPartition(dlq, p) for p in sorted(known or {0})]
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        depths: dict[str, int] = {}
        for tp in partitions:
            name = f"{self._catalogue_name(tp.topic.removesuffix('.dlq'))}.dlq"
            depths[name] = depths.get(name, 0) + max(0, ends[tp] - starts[tp])
        return depths

    def _ignorable(self, exc: UnknownEventType, topic: str) -> bool:
        """A type of the topic owner's namespace, unknown to this release: a newer
        producer's (or another major version's), not poison."""
        catalogue = self._topics.get(topic)
        owner = catalogue.owner if catalogue is not None else _owner_of(topic)
        return owner is not None and exc.event_type.startswith(f"rebond.{owner}.")

    async def process_many(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> int:
        """Handle records of one partition, in order; how many of them, from the first,
        reached their end (fewer than all: the next one met a transient failure, or the
        runner is stopping — it and those after it are not done).

        Consecutive records this consumer handles are applied together, up to
        `transaction_size`, in ONE transaction (each one's inbox row and effect, then one
        commit). A record that cannot be decoded, or that this consumer ignores, ends the
        run before it and is handled alone. A batch that fails in any way is rolled back
        whole and its records are handled again one transaction each (`process`): the
        poison one is retried or dead-lettered with its reason, the others applied once."""
        done = 0
        run: list[_Prepared[U]] = []
        for record in records:
            if self._stopping.is_set():
                return done
            prepared = self._prepare(record)
            if prepared is not None:
                run.append(prepared)
                if len(run) < self._transaction_size:
                    continue
            applied = await self._apply_run(run)  # full, or ended by a record seen alone
            done += applied
            if applied < len(run):
                return done
            run = []
            if prepared is None:
                if self._stopping.is_set():
                    return done
                if await self.process(record) is Outcome.TRANSIENT:
                    return done
                done += 1
        return done + await self._apply_run(run)

    def _prepare(self, record: ConsumerRecord[bytes, bytes]) -> _Prepared[U] | None:
        """The record's envelope and handler, or None when `process` must see it alone
        (undecodable, unknown type, or not this consumer's)."""
        try:
            envelope = decode(record.headers, record.value, self._registry)
        except MalformedEvent:  # UnknownEventType included
            return None
        handler = self._handlers.get(envelope.type)
        return None if handler is None else _Prepared(record, envelope, handler)

    async def _apply_run(self, run: Sequence[_Prepared[U]]) -> int:
        """Apply a run of prepared records: how many, from the first, reached their end.

        In transactions of up to `transaction_size` records, fewer when records are slow:
        a transaction is sized to last about `max_transaction_s` (from the last ones'
        pace), so that the locks it holds (SQLite's one writer, above all) stay short."""
        done = 0
        # Stopping ends the run between transactions: what is done gets its offsets
        # committed within stop's grace, the rest is redelivered to whoever reads next.
        while done < len(run) and not self._stopping.is_set():
            chunk = run[done : done + self._chunk]
            if len(chunk) > 1:
                started = time.monotonic()
                try:
                    await self._apply_batch(chunk)
                except Exception as exc:
                    # Rolled back whole: nothing of it was applied. One by one below, the
                    # record at fault is retried or dead-lettered alone, the others
                    # applied; a transient failure pauses the runner.
                    self.stats.batch_fallbacks += 1
                    if not is_transient(exc):
                        log.info(
                            "batch failed, its records handled one transaction each",
                            records=len(chunk),
                            first_offset=chunk[0].record.offset,
                            error=describe(exc),
                        )
                else:
                    self._healthy()
                    done += len(chunk)
                    pace = (time.monotonic() - started) / len(chunk)
                    fits = int(self._max_transaction_s / pace) if pace > 0 else len(chunk)
                    floor = min(2, self._transaction_size)
                    self._chunk = max(floor, min(self._transaction_size, fits))
                    continue
            for prepared in chunk:
                if self._stopping.is_set():
                    return done
                if await self.process(prepared.record) is Outcome.TRANSIENT:
                    return done
                done += 1
        return done

    async def _apply_batch(self, run: Sequence[_Prepared[U]]) -> None:
        applied = duplicates = 0
        # Each message's handler in a span of its own trace; the last one's stays open
        # through the commit, which writes that message's events (and their context).
        async with self._uow_factory() as uow, contextlib.AsyncExitStack() as last_span:
            fresh = await uow.record_inbox_many(
                self.name,
                [
                    (
                        p.envelope,
                        self._catalogue_name(p.record.topic),
                        p.record.partition,
                        p.record.offset,
                    )
                    for p in run
                ],
            )
            last = max((i for i, f in enumerate(fresh) if f), default=-1)
            for index, (prepared, is_fresh) in enumerate(zip(run, fresh, strict=True)):
                record, envelope = prepared.record, prepared.envelope
                structlog.contextvars.bind_contextvars(
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    event_id=str(envelope.id),
                    event_type=envelope.type,
                )
                span = self._span(record, envelope)
                if not is_fresh:
                    duplicates += 1
                    with span:
                        log.info("duplicate event ignored")
                    continue
                bind_correlation(envelope.correlation_id, str(envelope.id))
                if index < last:
                    with span:
                        await prepared.handler(uow, envelope)
                        # Written (not committed) before the next handler runs, with this
                        # message's correlation ids and trace context on its events.
                        await uow.checkpoint()
                else:
                    last_span.enter_context(span)
                    await prepared.handler(uow, envelope)
                applied += 1
            await uow.commit()
        self.stats.processed += applied
        self.stats.duplicates += duplicates
        for prepared, is_fresh in zip(run, fresh, strict=True):
            self._count(prepared.record.topic, prepared.envelope.type, fresh=is_fresh)

    def _span(
        self, record: ConsumerRecord[bytes, bytes], envelope: Envelope[Any] | None = None
    ) -> contextlib.AbstractContextManager[Any]:
        return consumer_span(
            context_from_kafka(record.headers),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            consumer=self.name,
            event_id=str(envelope.id) if envelope is not None else None,
            event_type=envelope.type if envelope is not None else None,
        )

    def _catalogue_name(self, topic: str) -> str:
        return self._topics[topic].name if topic in self._topics else topic

    @_in_consumer_span
    async def process(self, record: ConsumerRecord[bytes, bytes]) -> Outcome:
        """Handle one record to its end: effect committed, ignored, dead-lettered — or
        TRANSIENT: not done, because the infrastructure failed (retry it later). All of
        it, retries included, in one CONSUMER span of the trace the record carries."""
        structlog.contextvars.bind_contextvars(
            topic=record.topic, partition=record.partition, offset=record.offset
        )
        try:
            envelope = decode(record.headers, record.value, self._registry)
        except UnknownEventType as exc:
            if self._ignorable(exc, record.topic):
                self.stats.ignored += 1
                self._count(record.topic, exc.event_type, Outcome.IGNORED)
                self._trouble.failure(
                    f"unknown-type:{exc.event_type}",
                    "event type unknown to this release skipped (a newer producer's)",
                    level="info",
                    event_type=exc.event_type,
                )
                return Outcome.IGNORED
            return await self._dead_letter_or_wait(record, exc, attempts=1)
        except MalformedEvent as exc:
            return await self._dead_letter_or_wait(record, exc, attempts=1)
        structlog.contextvars.bind_contextvars(event_id=str(envelope.id), event_type=envelope.type)
        message_span_describes(envelope)
        bind_correlation(envelope.correlation_id, str(envelope.id))
        handler = self._handlers.get(envelope.type)
        if handler is None:
            self.stats.ignored += 1  # another consumer's business on a shared topic
            self._count(record.topic, envelope.type, Outcome.IGNORED)
            return Outcome.IGNORED
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await self._apply(
                    handler, envelope, record.topic, record.partition, record.offset, traced=True
                )
                self._healthy()
                return outcome
            except PermanentError as exc:
                self._healthy()
                return await self._dead_letter_or_wait(record, exc, attempts=attempt)
            except Exception as exc:
                if is_transient(exc):
                    return self._transient(exc)
                if self._stopping.is_set():
                    return Outcome.TRANSIENT  # not dead-lettered, not committed: redelivered
                if attempt >= self._max_attempts:
                    return await self._dead_letter_or_wait(record, exc, attempts=attempt)
                self.stats.retries += 1
                delay = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
                log.warning(
                    "handler failed, retrying", attempt=attempt, delay_s=delay, error=repr(exc)
                )
                await asyncio.sleep(delay)

    async def _apply(
        self,
        handler: Handler[U],
        envelope: Envelope[Any],
        topic: str,
        partition: int,
        offset: int,
        *,
        traced: bool = False,
    ) -> Outcome:
        """The inbox row and the handler's effect, one transaction. `traced`: the caller
        (`process`) has this message's span current; otherwise (a re-drive) it is opened
        here, from the trace context the message carried."""
        if not traced:
            parent = context_from_mapping(envelope.extra_headers)
            with consumer_span(
                parent,
                topic=topic,
                partition=partition,
                offset=offset,
                consumer=self.name,
                event_id=str(envelope.id),
                event_type=envelope.type,
            ):
                return await self._apply(handler, envelope, topic, partition, offset, traced=True)
        async with self._uow_factory() as uow:
            fresh = await uow.record_inbox(
                self.name,
                envelope,
                topic=self._catalogue_name(topic),
                partition=partition,
                offset=offset,
            )
            if not fresh:
                self.stats.duplicates += 1
                self._count(topic, envelope.type, Outcome.DUPLICATE)
                log.info("duplicate event ignored")
                return Outcome.DUPLICATE
            await handler(uow, envelope)
            await uow.commit()
        self.stats.processed += 1
        self._count(topic, envelope.type, Outcome.PROCESSED)
        return Outcome.PROCESSED

    async def redrive(
        self,
        headers: Sequence[tuple[str, bytes]],
        value: bytes | None,
        *,
        topic: str,
        partition: int,
        offset: int,
    ) -> tuple[Outcome, str]:
        """Put one dead-lettered message back through its handler (after a fix): applied
        once only (the inbox), never dead-lettered again; says what happened and why.
        `topic`, `partition` and `offset` are the message's original place."""
        try:
            envelope = decode(headers, value, self._registry)
        except MalformedEvent as exc:
            return Outcome.FAILED, str(exc)
        handler = self._handlers.get(envelope.type)
        if handler is None:
            return Outcome.IGNORED, f"{self.name} does not handle {envelope.type}"
        bind_correlation(envelope.correlation_id, str(envelope.id))
        try:
            outcome = await self._apply(handler, envelope, topic, partition, offset)
        except Exception as exc:
            if is_transient(exc):
                return Outcome.TRANSIENT, describe(exc)
            return Outcome.FAILED, describe(exc)
        return outcome, "applied" if outcome is Outcome.PROCESSED else "already applied"

    async def _dead_letter_or_wait(
        self, record: ConsumerRecord[bytes, bytes], exc: BaseException, *, attempts: int
    ) -> Outcome:
        try:
            await self._dead_letter(record, exc, attempts=attempts)
        except Exception as dlq_exc:
            # The dead-letter topic is unreachable: keep the message, as for any outage.
            return self._transient(dlq_exc)
        return Outcome.DEAD_LETTERED

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
        event_type = dict(record.headers or ()).get(H_TYPE, b"").decode("utf-8", "replace")
        self._count(record.topic, event_type[:200] or "unknown", Outcome.DEAD_LETTERED)
        log.error(
            "message dead-lettered",
            reason=reason,
            error_type=exc.__class__.__name__,
            attempts=attempts,
            trace="".join(traceback.format_exception(exc))[-2000:],
        )
