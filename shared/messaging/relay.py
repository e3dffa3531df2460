"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

- One active relay per service database: it must hold a lock first (a PostgreSQL
  advisory lock held by a dedicated connection, or a file lock beside the SQLite file),
  because two relays would interleave rows and break per-key order. Standby relays keep
  trying and take over when the holder dies (its connection, hence its lock, goes away).
- A row is marked sent only after the broker acknowledged it (idempotent producer,
  acks=all, key = aggregate id). A crash between the ack and the mark re-publishes the
  row: consumers deduplicate on the event id (inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col, select

from shared.db import SessionFactory
from shared.logging import get_logger
from shared.messaging.tables import OutboxEvent, utcnow

log = get_logger(__name__)

AfterPublish = Callable[[Sequence[OutboxEvent]], Awaitable[None]]


class RelayLock:
    """Leadership among the relays of one service database."""

    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self._engine = engine
        self._name = name
        self._conn: AsyncConnection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    async def try_acquire(self) -> bool:
        if self.held:
            return True
        url = self._engine.url
        if url.get_backend_name() == "postgresql":
            key = int.from_bytes(
                hashlib.sha256(self._name.encode()).digest()[:8], "big", signed=True
            )
            conn = await self._engine.connect()
            got = (
                await conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
            ).scalar()
            await conn.commit()
            if got:
                self._conn = conn
                return True
            await conn.close()
            return False
        database = make_url(str(url)).database or "memory"
        path = Path(f"{database}.{self._name}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()  # closing the session releases the advisory lock
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        session_factory: SessionFactory,
        producer_factory: Callable[[], AIOKafkaProducer],
        service: str,
        topic_prefix: str = "",
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        after_publish: AfterPublish | None = None,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self._session_factory = session_factory
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._prefix = topic_prefix
        self._batch_size = batch_size
        self._poll = poll_interval_s
        self._after_publish = after_publish
        self._retention = retention
        self._next_purge = 0.0
        self._lock = RelayLock(engine, f"rebond-outbox-relay-{service}")
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self.published = 0

    def notify(self) -> None:
        """Called after a commit that wrote outbox rows: publish now, not at next poll."""
        self._wakeup.set()

    async def start(self) -> None:
        if self._producer is None:
            self._producer = self._producer_factory()
            await self._producer.start()

    async def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        await self._lock.release()

    async def run(self) -> None:
        """Publish until stopped. Errors are logged and retried: the rows stay unsent."""
        await self.start()
        while not self._stopping.is_set():
            try:
                if not await self._lock.try_acquire():
                    await self._sleep()
                    continue
                if await self.publish_pending() == 0:
                    await self._purge_if_due()
                    await self._sleep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed; rows stay unsent and are retried")
                await self._sleep()

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
        """One pass: publish the oldest unsent rows, mark the acknowledged ones sent."""
        if not await self._lock.try_acquire():
            return 0
        await self.start()
        assert self._producer is not None
        total = 0
        while True:
            async with self._session_factory() as session:
                rows = (
                    await session.exec(
                        select(OutboxEvent)
                        .where(col(OutboxEvent.sent_at).is_(None))
                        .order_by(col(OutboxEvent.id))
                        .limit(self._batch_size)
                    )
                ).all()
            if not rows:
                return total
            acked = await self._send(rows)
            if self._after_publish is not None:
                await self._after_publish(acked)
            await self._mark_sent([r.id for r in acked if r.id is not None])
            total += len(acked)
            self.published += len(acked)
            if len(acked) < len(rows):
                return total  # the rest failed: retried on the next pass, in order

    async def _send(self, rows: Sequence[OutboxEvent]) -> list[OutboxEvent]:
        assert self._producer is not None
        futures: list[asyncio.Future[Any]] = []
        for row in rows:
            futures.append(
                await self._producer.send(
                    self._prefix + row.topic,
                    value=row.payload.encode(),
                    key=row.key.encode(),
                    headers=[(k, v.encode()) for k, v in row.headers],
                )
            )
        results = await asyncio.gather(*futures, return_exceptions=True)
        # Only the prefix of acknowledged rows counts: marking a later row while an
        # earlier one of the same key failed would let the earlier one overtake it.
        acked: list[OutboxEvent] = []
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("outbox publish failed", event_id=str(row.event_id), error=str(result))
                break
            acked.append(row)
        return acked

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
