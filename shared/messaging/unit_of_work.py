"""The unit of work: the only place that commits.

It collects the events recorded by the aggregates it has seen, writes them as outbox
rows, and commits them in the same transaction as the state change — so an event is
published if and only if the change it describes was committed.

Each row keeps the context it was written in: the correlation ids bound now, and the
W3C `traceparent`/`tracestate` of the current span (when there is one), among the headers
the relay sends verbatim — so a trace continues from the request (or the message) that
caused the event to whatever its consumers do.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import SessionFactory
from shared.events.catalogue import topic_of
from shared.events.envelope import Envelope, EventPayload
from shared.logging import causation_id_var, correlation_id_var
from shared.messaging.tables import BUSINESS_KEY_MAX, InboxMessage, OutboxEvent, utcnow
from shared.tracing import trace_headers


class RecordsEvents(Protocol):
    events: list[EventPayload]


class SqlUnitOfWork:
    """Base unit of work; each service subclasses it to attach its repositories in
    `_start` and to say which aggregates it has seen in `seen_aggregates`."""

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        source: str,
        on_commit_with_events: Callable[[], None] | None = None,
    ) -> None:
        self._session_factory = session_factory
        self.source = source
        self._on_commit_with_events = on_commit_with_events
        self._events: list[EventPayload] = []
        self._session: AsyncSession | None = None
        self._staged: list[Envelope[EventPayload]] = []  # outbox rows written, not committed
        self.committed_envelopes: list[Envelope[EventPayload]] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")
        return self._session

    async def __aenter__(self) -> Self:
        self._session = self._session_factory()
        self._events = []
        self._staged = []
        self.committed_envelopes = []
        self._start(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.rollback()
        finally:
            await self.session.close()
            self._session = None

    def _start(self, session: AsyncSession) -> None:
        """Attach repositories to the session (overridden by services)."""

    def seen_aggregates(self) -> Iterable[RecordsEvents]:
        """Aggregates loaded or added through the repositories (overridden by services)."""
        return ()

    async def _before_commit(self) -> None:
        """Write tracked aggregates back to their rows (overridden by services)."""

    async def _with_outbox(self, envelopes: list[Envelope[EventPayload]]) -> None:
        """Write what must commit with these events' outbox rows, e.g. a durable feed of
        them (overridden by services; the rows are in the session, not yet flushed)."""

    def publish(self, event: EventPayload) -> None:
        """Stage an event that no aggregate recorded (e.g. a projection's own event)."""
        self._events.append(event)

    def _collect_events(self) -> list[EventPayload]:
        events = list(self._events)
        self._events.clear()
        for aggregate in self.seen_aggregates():
            events.extend(aggregate.events)
            aggregate.events.clear()
        return events

    async def _stage(self) -> None:
        """Write the tracked aggregates back and add their events' outbox rows to the
        session (not flushed), under the correlation ids and the span current now."""
        await self._before_commit()
        events = self._collect_events()
        envelopes = [
            Envelope.new(
                event,
                source=self.source,
                correlation_id=correlation_id_var.get(),
                causation_id=causation_id_var.get(),
            )
            for event in events
        ]
        traced = trace_headers() if envelopes else []
        for envelope in envelopes:
            self.session.add(_outbox_row(envelope, traced))
        if envelopes:
            await self._with_outbox(envelopes)
        self._staged.extend(envelopes)

    async def checkpoint(self) -> None:
        """Write what this transaction holds so far (aggregates' rows, their events'
        outbox rows) without committing it: the consumer's batch runs several messages'
        handlers in one transaction, each one reading the previous ones' effects from the
        database as it would once committed, and each one's events carrying its own
        correlation ids. `commit` (or `rollback`) ends the transaction as usual."""
        await self._stage()
        await self.session.flush()

    async def commit(self) -> None:
        await self._stage()
        await self.session.commit()
        envelopes, self._staged = self._staged, []
        self.committed_envelopes.extend(envelopes)
        if envelopes and self._on_commit_with_events is not None:
            self._on_commit_with_events()

    async def rollback(self) -> None:
        self._events.clear()
        self._staged = []
        for aggregate in self.seen_aggregates():
            aggregate.events.clear()
        await self.session.rollback()

    async def record_inbox(
        self, consumer: str, envelope: Envelope[Any], *, topic: str, partition: int, offset: int
    ) -> bool:
        """Insert the inbox row; False when this consumer already processed the event —
        the same event id, or the same business fact under another id."""
        values = _inbox_values(consumer, envelope, topic, partition, offset, utcnow())
        dialect = self.session.bind.dialect.name if self.session.bind else "postgresql"
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(InboxMessage).values(**values).on_conflict_do_nothing()
        result = await self.session.exec(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def record_inbox_many(self, consumer: str, messages: Sequence[InboxEntry]) -> list[bool]:
        """`record_inbox` for several messages in a few statements (a consumer's batch):
        for each, in order, whether it is fresh. A message that repeats an earlier one of
        the same call (same event id or business key) is not fresh."""
        now = utcnow()
        rows = [_inbox_values(consumer, env, t, p, o, now) for env, t, p, o in messages]
        dialect = self.session.bind.dialect.name if self.session.bind else "postgresql"
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = InboxMessage.__table__  # type: ignore[attr-defined]
        inserted: set[uuid.UUID] = set()
        for start in range(0, len(rows), _INBOX_ROWS_PER_STATEMENT):
            chunk = rows[start : start + _INBOX_ROWS_PER_STATEMENT]
            stmt = insert(table).values(chunk).on_conflict_do_nothing().returning(table.c.event_id)
            result = await self.session.exec(stmt)
            inserted.update(result.scalars().all())
        fresh = []
        for row in rows:
            event_id = row["event_id"]
            fresh.append(event_id in inserted)
            inserted.discard(event_id)  # a second copy of the same event id is a duplicate
        return fresh


#: (envelope, catalogue topic name, partition, offset) of a message a consumer processes
InboxEntry = tuple[Envelope[Any], str, int, int]
#: 8 parameters a row: well under SQLite's and PostgreSQL's limits per statement
_INBOX_ROWS_PER_STATEMENT = 100


def _inbox_values(
    consumer: str, envelope: Envelope[Any], topic: str, partition: int, offset: int, now: Any
) -> dict[str, Any]:
    return {
        "consumer": consumer,
        "event_id": envelope.id,
        "business_key": _bounded(envelope.payload.business_key()),
        "event_type": envelope.type,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "processed_at": now,
    }


def _bounded(business_key: str | None) -> str | None:
    # Keys are readable when they fit; a longer one (a long scheme id) is hashed whole.
    if business_key is None or len(business_key) <= BUSINESS_KEY_MAX:
        return business_key
    return "sha256:" + hashlib.sha256(business_key.encode()).hexdigest()


def _outbox_row(
    envelope: Envelope[EventPayload], traced: Sequence[tuple[str, str]] = ()
) -> OutboxEvent:
    return OutboxEvent(
        event_id=envelope.id,
        topic=topic_of(envelope.payload).name,
        key=envelope.subject,
        event_type=envelope.type,
        headers=[[k, v.decode()] for k, v in envelope.headers()] + [[k, v] for k, v in traced],
        payload=envelope.value().decode(),
    )
