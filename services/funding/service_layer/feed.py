"""The funders' feed over HTTP: the funder topic's events as CloudEvents (structured JSON
mode), read from `funder_feed_entries` in sequence order, in the caller's scope.

The same events as the Kafka topic `rebond.funding.funder_feed.v1`, under the same
event ids, for the funders that run no Kafka client: a page of them
(`GET /funder/feed/events`) or a server-sent-event stream (`GET /funder/feed`) that
resumes after the last sequence number the client saw (`Last-Event-ID`). See
docs/funder-feed.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.funding.adapters.orm import FunderFeedEntryRow, FundingProjectRow
from shared.auth import Principal, Role
from shared.db import SessionFactory
from shared.events.envelope import CONTENT_TYPE, SPEC_VERSION
from shared.logging import get_logger
from shared.transient import describe, is_transient

log = get_logger(__name__)

#: the largest sequence number a client may name (the column is a 32-bit integer)
MAX_SEQUENCE = 2**31 - 1
#: the CloudEvents extension attribute that carries the feed's sequence number
SEQUENCE_ATTRIBUTE = "feedseq"
#: what an SSE client waits before reconnecting after the stream ends (milliseconds)
RETRY_MS = 3000


@dataclass(frozen=True)
class FeedScope:
    """Whose events a caller reads: every region (admin), or the projects of `regions`
    whose firm consents to share them now (a funder)."""

    regions: frozenset[str] | None

    @classmethod
    def of(cls, principal: Principal) -> FeedScope:
        """Admins read the whole feed; a funder its regions (its `regions` claim); a
        region claim counts only with the funder's role (`shared.auth.SCOPE_CLAIMS`)."""
        if principal.is_admin:
            return cls(None)
        return cls(principal.regions if Role.FUNDER in principal.roles else frozenset())

    @property
    def empty(self) -> bool:
        return self.regions is not None and not self.regions


async def entries_after(
    session: AsyncSession, after: int, scope: FeedScope, limit: int
) -> Sequence[FunderFeedEntryRow]:
    """The feed's next `limit` entries after sequence number `after`, in the scope.

    A funder's entries are those of its regions' projects whose firm consents to share
    them *now*: the topic only ever carried consented projects, and a firm that withdraws
    its consent also withdraws what the feed keeps of it."""
    if scope.empty:
        return []
    query = select(FunderFeedEntryRow).where(col(FunderFeedEntryRow.seq) > after)
    if scope.regions is not None:
        query = (
            query.join(
                FundingProjectRow,
                col(FundingProjectRow.project_id) == col(FunderFeedEntryRow.project_id),
            )
            .where(col(FunderFeedEntryRow.region).in_(sorted(scope.regions)))
            .where(col(FundingProjectRow.consent_to_share).is_(True))
        )
    query = query.order_by(col(FunderFeedEntryRow.seq)).limit(limit)
    return (await session.exec(query)).all()


def cloud_event(entry: FunderFeedEntryRow) -> dict[str, Any]:
    """The entry as a CloudEvent in structured JSON mode: the Kafka message's `ce_*`
    headers as attributes, its value as `data`, and the feed's sequence number."""
    assert entry.seq is not None  # read back from the table
    return {
        "specversion": SPEC_VERSION,
        "id": str(entry.event_id),
        "source": entry.source,
        "type": entry.event_type,
        "time": entry.time.isoformat(),
        "subject": entry.subject,
        "datacontenttype": CONTENT_TYPE,
        SEQUENCE_ATTRIBUTE: entry.seq,
        "data": json.loads(entry.payload),
    }


def sse_message(entry: FunderFeedEntryRow) -> str:
    """One server-sent event: `id` the sequence number, `event` the CloudEvents type,
    `data` the structured CloudEvent on one line (JSON escapes every newline)."""
    data = json.dumps(cloud_event(entry), ensure_ascii=False, separators=(",", ":"))
    return f"id: {entry.seq}\nevent: {entry.event_type}\ndata: {data}\n\n"


class FeedNotifier:
    """Wakes this process's streams when it commits feed entries, so a follower does not
    wait for its next poll (entries committed by other replicas wait for the poll).

    A reader takes a `ticket` *before* it reads: a commit between the read and the wait
    has already set the ticket, and the wait returns at once."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def ticket(self) -> asyncio.Event:
        return self._event

    @staticmethod
    async def wait(ticket: asyncio.Event, at_most_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most_s):
                await ticket.wait()


@dataclass(frozen=True)
class StreamSettings:
    poll_interval_s: float
    heartbeat_s: float
    max_duration_s: float
    batch: int


async def sse_stream(
    session_factory: SessionFactory,
    scope: FeedScope,
    first: Sequence[FunderFeedEntryRow],
    after: int,
    *,
    follow: bool,
    notifier: FeedNotifier,
    ticket: asyncio.Event,
    settings: StreamSettings,
    monotonic: Callable[[], float] = time.monotonic,
) -> AsyncIterator[str]:
    """The stream's text: `first` (read by the request, `ticket` taken just before, so
    that a database down answers 503 rather than an empty stream), then every entry
    after it as it commits.

    Bounded (`follow` False): ends at the end of the backlog. Following: a comment line
    every `heartbeat_s` without events, so that proxies keep the connection open; the
    stream ends after `max_duration_s` (the client reconnects with `Last-Event-ID`, and
    its token is checked again) or when the database stops answering."""
    started = monotonic()
    last_sent = started
    yield f"retry: {RETRY_MS}\n\n"
    rows: Sequence[FunderFeedEntryRow] | None = first
    while rows is not None:
        for row in rows:
            yield sse_message(row)
            assert row.seq is not None
            after = row.seq
        now = monotonic()
        if rows:
            last_sent = now
        if follow and now - started >= settings.max_duration_s:
            return
        if len(rows) < settings.batch:  # a full batch: more may wait, read again at once
            if not follow:
                return
            if now - last_sent >= settings.heartbeat_s:
                yield ": keep-alive\n\n"
                last_sent = now
            # Taken before the last read: a commit since then has set it already.
            await notifier.wait(ticket, min(settings.poll_interval_s, settings.heartbeat_s))
        ticket = notifier.ticket()
        rows = await _read(session_factory, after, scope, settings.batch)


async def _read(
    session_factory: SessionFactory, after: int, scope: FeedScope, limit: int
) -> Sequence[FunderFeedEntryRow] | None:
    """The next entries (None: the database failed; the stream ends, and the client
    resumes later or on another replica)."""
    try:
        async with session_factory() as session:
            return await entries_after(session, after, scope, limit)
    except Exception as exc:
        if not is_transient(exc):
            raise
        log.warning("funder feed stream ended: the database is unreachable", error=describe(exc))
        return None
