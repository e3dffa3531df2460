"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

- **One publisher per service database**, really: the relay publishes only while it
  holds the database lease (`lease.py`: renewed before every batch, taken over only after
  it expired, with a fencing token), so a process that lost it stops at once and a hung
  holder is replaced within `lease_ttl_s`. The Kafka side is fenced too: every process
  of a service uses the same transactional id, so the new leader's producer fences the
  old one's, and a batch the old one was sending when it hung is aborted by the broker
  instead of interleaving with the new leader's.
- **A batch is one Kafka transaction** (idempotent producer, acks=all, key = aggregate
  id): all its rows become visible to `read_committed` readers together, or none do. Rows
  are marked sent only after the commit. A crash between the commit and the mark
  re-publishes the rows: consumers deduplicate on the event id (inbox).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.trace import Span, StatusCode
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from shared import tracing
from shared.db import SessionFactory
from shared.logging import Throttled, get_logger
from shared.messaging.lease import Lease
from shared.messaging.tables import OutboxEvent, utcnow
from shared.transient import describe

log = get_logger(__name__)


class PendingEvent(Protocol):
    """An unsent outbox row, as the relay reads it (columns, not ORM entities: cheaper)."""

    id: int
    event_id: uuid.UUID
    topic: str
    key: str
    event_type: str
    headers: list[list[str]]
    payload: str


AfterPublish = Callable[[Sequence[PendingEvent]], Awaitable[None]]
ProducerFactory = Callable[[str], AIOKafkaProducer]  # transactional id → producer


class LeaseLost(RuntimeError):
    """Another process took over the outbox: this one must not publish."""


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        session_factory: SessionFactory,
        producer_factory: ProducerFactory,
        service: str,
        topic_prefix: str = "",
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        after_publish: AfterPublish | None = None,
        retention: timedelta = timedelta(days=7),
        lease_ttl_s: float = 10.0,
    ) -> None:
        self._engine = engine
        self._session_factory = session_factory
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._prefix = topic_prefix
        self._batch_size = batch_size
        self._poll = poll_interval_s
        self._after_publish = after_publish
        self._retention = retention
        self._next_purge = 0.0
        self.lease = Lease(
            engine, f"{topic_prefix}rebond-outbox-relay-{service}", ttl_s=lease_ttl_s
        )
        # The same for every process of the service (and per deployment prefix): the
        # broker lets one producer of a transactional id live, the newest.
        self.transactional_id = f"{topic_prefix}rebond-relay-{service}"
        self._renewed_at = 0.0
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._publishing = asyncio.Lock()  # run() and a direct publish_pending() in-process
        table = OutboxEvent.__table__  # type: ignore[attr-defined]
        self._pending_query = (
            sa.select(
                table.c.id,
                table.c.event_id,
                table.c.topic,
                table.c.key,
                table.c.event_type,
                table.c.headers,
                table.c.payload,
            )
            .where(table.c.sent_at.is_(None))
            .order_by(table.c.id)
            .limit(batch_size)
        )
        self._trouble = Throttled(log)
        self.problem: str | None = None
        self.published = 0
        #: (logical topic, event type) → events this process published (for /metrics)
        self.published_by: collections.Counter[tuple[str, str]] = collections.Counter()
        self._backlog_query = sa.select(sa.func.count(), sa.func.min(table.c.created_at)).where(
            table.c.sent_at.is_(None)
        )

    def notify(self) -> None:
        """Called after a commit that wrote outbox rows: publish now, not at next poll."""
        self._wakeup.set()

    async def start(self) -> None:
        """Nothing to open before leadership: a standby must not create the transactional
        producer, which would fence the leader's."""

    _run_exited: asyncio.Event | None = None  # set when run() has returned

    async def stop(self, *, grace_s: float = 5.0) -> None:
        """Stop publishing and hand the lease over at once (SIGTERM, a clean exit).

        The batch in hand is given `grace_s` to finish (published and marked sent); a
        batch stuck on an unreachable broker does not hold the shutdown longer: stopping
        its producer fails it, and its rows stay unsent for the next leader. The lease is
        released only then, so that the next leader never publishes beside this one."""
        self._stopping.set()
        self._wakeup.set()
        exited = self._run_exited
        if exited is not None and not await self._within(exited.wait(), grace_s):
            await self._drop_producer()  # fails the stuck batch: its rows stay unsent
            await self._within(exited.wait(), 1.0)
        async with contextlib.AsyncExitStack() as stack:
            # A direct publish_pending() (a one-off command) finishes its batch too.
            if await self._within(self._publishing.acquire(), grace_s if exited is None else 0.5):
                stack.callback(self._publishing.release)
            await self._drop_producer()
            token = self.lease.token
            try:
                released = await self.lease.release()
            except Exception as exc:
                log.warning(
                    "outbox relay could not release its lease; a standby takes over when it"
                    " expires",
                    error=describe(exc),
                    ttl_s=self.lease.ttl_s,
                )
            else:
                if released:
                    log.info("outbox relay released its lease", lease_token=token)

    @staticmethod
    async def _within(awaitable: Awaitable[object], timeout_s: float) -> bool:
        """Awaited to its end within `timeout_s` (True), or cancelled (False)."""
        try:
            await asyncio.wait_for(awaitable, timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Publish until stopped. Failures are logged (once per interval) and retried: the
        rows stay unsent."""
        self._run_exited = exited = asyncio.Event()
        try:
            await self._run()
        finally:
            exited.set()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if not await self._lead():
                    await self._sleep()
                    continue
                if await self.publish_pending() == 0:
                    await self._purge_if_due()
                    await self._sleep()
                if self.problem is not None:
                    self._trouble.recovered("relay", "outbox relay recovered")
                    self.problem = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.problem = f"outbox relay: {describe(exc)}"
                self._trouble.failure(
                    "relay",
                    "outbox relay pass failed; rows stay unsent and are retried",
                    error=describe(exc),
                )
                await self._sleep()

    async def _lead(self) -> bool:
        """Hold the lease (renewing it when a third of its life has passed)."""
        now = time.monotonic()
        if self.lease.held and now - self._renewed_at < self.lease.ttl_s / 3:
            return True
        held_before = self.lease.held  # losing it is logged by the lease itself
        if await self.lease.acquire_or_renew():
            self._renewed_at = now
            if not held_before:
                log.info("outbox relay leads", lease_token=self.lease.token)
            return True
        await self._drop_producer()
        return False

    async def _purge_if_due(self) -> None:
        # Hourly at most, and only by the leader: the outbox is a queue, not an archive.
        now = time.monotonic()
        if now >= self._next_purge:
            self._next_purge = now + 3600
            purged = await self.purge_sent(self._retention)
            if purged:
                log.info("sent outbox rows purged", rows=purged)

    async def _sleep(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll)
        self._wakeup.clear()

    async def publish_pending(self) -> int:
        """Publish the unsent rows, oldest first, batch by batch; 0 when not the leader."""
        total = 0
        async with self._publishing:
            while not self._stopping.is_set():
                # Checked before every batch: a lost lease stops publishing at once.
                if not await self.lease.acquire_or_renew():
                    await self._drop_producer()
                    return total
                self._renewed_at = time.monotonic()
                async with self._engine.connect() as conn:
                    result = await conn.execute(self._pending_query)
                    rows: Sequence[PendingEvent] = result.all()
                if not rows:
                    return total
                await self._send(rows)
                if self._after_publish is not None:
                    await self._after_publish(rows)
                await self._mark_sent([r.id for r in rows])
                total += len(rows)
                self.published += len(rows)
                self.published_by.update((r.topic, r.event_type) for r in rows)
        return total

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._producer_factory(self.transactional_id)
            try:
                await producer.start()  # init_transactions: fences any older producer
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _send(self, rows: Sequence[PendingEvent]) -> None:
        """One transaction: every row acknowledged and committed, or the batch aborted.

        A row written under a trace is sent in a PRODUCER span of that trace (its parent
        is the context stored with the row, so the publish shows where the request's
        events waited), and its trace headers are re-injected to name that span: the
        consumer's span is the publish's child. The span ends with the transaction. A row
        stored without a trace context is sent as it is, with no span."""
        producer = await self._ensure_producer()
        spans: list[Span] = []
        try:
            await producer.begin_transaction()
            futures = []
            for row in rows:
                topic = self._prefix + row.topic
                headers = [(k, v.encode()) for k, v in row.headers]
                parent = tracing.context_from_stored(row.headers)
                if tracing.has_parent(parent):
                    span = tracing.producer_span(parent, topic=topic, event_id=str(row.event_id))
                    spans.append(span)
                    current = trace.set_span_in_context(span)
                    headers = tracing.replace_trace_headers(headers, current)
                futures.append(
                    await producer.send(
                        topic, value=row.payload.encode(), key=row.key.encode(), headers=headers
                    )
                )
            await asyncio.gather(*futures)
            await producer.commit_transaction()
        except BaseException as exc:
            for span in spans:
                span.record_exception(exc)
                span.set_status(StatusCode.ERROR, type(exc).__name__)
            # Aborted rows are invisible to read_committed readers and stay unsent here.
            # A producer that failed mid-transaction (fenced, timed out) is not reused.
            await self._drop_producer()
            raise
        finally:
            for span in spans:
                span.end()

    async def backlog(self) -> tuple[int, float]:
        """(unsent rows, age in seconds of the oldest one): what waits to be published,
        whoever leads. The partial index on unsent rows keeps this a small scan."""
        async with self._engine.connect() as conn:
            count, oldest = (await conn.execute(self._backlog_query)).one()
        if not count or oldest is None:
            return 0, 0.0
        if oldest.tzinfo is None:  # SQLite keeps UTC without its offset
            oldest = oldest.replace(tzinfo=UTC)
        return int(count), max(0.0, (datetime.now(UTC) - oldest).total_seconds())

    async def _mark_sent(self, ids: list[int]) -> None:
        if not ids:
            return
        async with self._session_factory() as session:
            await session.exec(
                sa.update(OutboxEvent).where(col(OutboxEvent.id).in_(ids)).values(sent_at=utcnow())
            )
            await session.commit()

    async def purge_sent(self, older_than: timedelta) -> int:
        """Delete rows sent long ago: the outbox is a queue, not an event store."""
        async with self._session_factory() as session:
            result = await session.exec(
                sa.delete(OutboxEvent).where(
                    col(OutboxEvent.sent_at).is_not(None),
                    col(OutboxEvent.sent_at) < utcnow() - older_than,
                )
            )
            await session.commit()
            return int(result.rowcount or 0)
