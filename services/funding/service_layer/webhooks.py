"""Funders' webhook subscriptions to the funder feed: the commands that make and delete
them, the listing, and the delivery worker that POSTs each event of the feed, in order,
signed, until the receiver acknowledges it (at least once). See docs/funder-feed.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.funding.adapters.orm import FunderFeedEntryRow, FunderWebhookRow
from services.funding.adapters.repository import webhook_of
from services.funding.domain.webhooks import (
    Webhook,
    retry_delay_s,
    secret_of,
    sign,
    validate_url,
)
from services.funding.service_layer.feed import FeedNotifier, FeedScope, cloud_event, entries_after
from services.funding.service_layer.unit_of_work import FundingUnitOfWork
from shared.auth import Principal
from shared.clock import Clock
from shared.db import SessionFactory
from shared.errors import Conflict, NotFound
from shared.logging import get_logger
from shared.messaging.lease import Lease
from shared.transient import describe, is_transient

log = get_logger(__name__)

#: subscriptions one funder (one token subject) may hold
MAX_PER_OWNER = 10
#: subscriptions delivered at the same time
CONCURRENT_DELIVERIES = 16
CLOUDEVENT_MEDIA_TYPE = "application/cloudevents+json; charset=utf-8"
LEASE = "funding.webhooks"


class TooManyWebhooks(Conflict):
    code = "too_many_webhooks"


async def create_webhook(
    uow: FundingUnitOfWork, url: str, principal: Principal, *, allow_loopback: bool, clock: Clock
) -> Webhook:
    """A subscription of the caller's scope (its regions now; an admin's: all), from the
    feed's current end: the past is in `GET /funder/feed/events`."""
    url = validate_url(url, allow_loopback=allow_loopback)
    mine = [w for w in await _owned(uow.session, principal) if w.owner == principal.subject]
    if len(mine) >= MAX_PER_OWNER:
        raise TooManyWebhooks(f"you have {len(mine)} webhooks already: delete one first")
    webhook = Webhook(
        id=uuid.uuid4(),
        owner=principal.subject,
        url=url,
        secret=secret_of(secrets.token_bytes(32)),
        regions=FeedScope.of(principal).regions,
        created_at=clock.now(),
        delivered_seq=await uow.webhooks.feed_end(),
    )
    uow.webhooks.add(webhook)
    return webhook


async def delete_webhook(
    uow: FundingUnitOfWork, webhook_id: uuid.UUID, principal: Principal
) -> Webhook:
    webhook = await uow.webhooks.get(webhook_id)
    if webhook is None or not (principal.is_admin or webhook.owner == principal.subject):
        raise NotFound(f"no webhook {webhook_id} of yours")
    await uow.webhooks.delete(webhook_id)
    return webhook


async def webhooks_of(session: AsyncSession, principal: Principal) -> list[Webhook]:
    """The caller's subscriptions (an admin: everyone's), oldest first."""
    return [webhook_of(r) for r in await _owned(session, principal)]


async def _owned(session: AsyncSession, principal: Principal) -> Sequence[FunderWebhookRow]:
    query = select(FunderWebhookRow).order_by(
        col(FunderWebhookRow.created_at), col(FunderWebhookRow.id)
    )
    if not principal.is_admin:
        query = query.where(FunderWebhookRow.owner == principal.subject)
    return (await session.exec(query)).all()


@dataclass(frozen=True)
class DeliverySettings:
    poll_interval_s: float
    timeout_s: float
    retry_base_s: float
    retry_max_s: float
    batch: int
    lease_ttl_s: float


class WebhookDelivery:
    """The delivery worker: one process of the service delivers at a time (a lease, as
    the relay's); each subscription's events go in feed order, the next one only once the
    previous was acknowledged (2xx), so a receiver sees them as the stream does; the
    subscriptions are served side by side. A failure
    (an error status, a timeout, a refused connection, a redirect) is retried with
    exponential backoff, never given up; the cursor moves after each acknowledgement, so
    a crash re-sends at most one event per subscription — under the same `webhook-id`
    (the event id), for the receiver to deduplicate."""

    #: a receiver's failure is not this service's problem: readiness stays green
    problem: str | None = None

    def __init__(
        self,
        engine: AsyncEngine,
        session_factory: SessionFactory,
        notifier: FeedNotifier,
        settings: DeliverySettings,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._session_factory = session_factory
        self._notifier = notifier
        self.settings = settings
        self._wall_clock = wall_clock
        self._stopping = asyncio.Event()
        self._lease = Lease(engine, LEASE, ttl_s=settings.lease_ttl_s)
        self.delivered = 0

    async def run(self) -> None:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            while not self._stopping.is_set():
                ticket = self._notifier.ticket()
                try:
                    if await self._lease.acquire_or_renew():
                        await self.deliver_due(client)
                except Exception as exc:
                    if not is_transient(exc):
                        log.exception("webhook delivery failed", error=describe(exc))
                    else:
                        log.warning("webhook delivery paused", error=describe(exc))
                await _first_of(ticket, self._stopping, self.settings.poll_interval_s)
        with contextlib.suppress(Exception):
            await self._lease.release()

    async def stop(self) -> None:
        self._stopping.set()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall_clock(), UTC)

    async def deliver_due(self, client: httpx.AsyncClient) -> None:
        """Every subscription whose next attempt is due: its next events, in order."""
        async with self._session_factory() as session:
            due = (
                await session.exec(
                    select(FunderWebhookRow)
                    .where(
                        or_(
                            col(FunderWebhookRow.next_attempt_at).is_(None),
                            col(FunderWebhookRow.next_attempt_at) <= self._now(),
                        )
                    )
                    .order_by(col(FunderWebhookRow.created_at))
                )
            ).all()
        # Side by side: a slow or unreachable receiver delays only its own deliveries.
        limit = asyncio.Semaphore(CONCURRENT_DELIVERIES)

        async def deliver(webhook: Webhook) -> None:
            async with limit:
                if not self._stopping.is_set():
                    await self._deliver(client, webhook)

        outcomes = await asyncio.gather(
            *(deliver(webhook_of(row)) for row in due), return_exceptions=True
        )
        failures = [o for o in outcomes if isinstance(o, Exception)]
        if failures:
            raise failures[0]  # logged by `run`; the others' cursors are where they got to

    async def _deliver(self, client: httpx.AsyncClient, webhook: Webhook) -> None:
        """The subscription's next events, until one fails or none is left."""
        scope = FeedScope(webhook.regions)
        while not self._stopping.is_set():
            async with self._session_factory() as session:
                entries = await entries_after(
                    session, webhook.delivered_seq, scope, self.settings.batch
                )
            for entry in entries:
                error = await self._post(client, webhook, entry)
                if error is not None:
                    await self._failed(webhook, error)
                    return
                assert entry.seq is not None
                if not await self._acknowledged(webhook, entry.seq):
                    return  # deleted meanwhile
                webhook.delivered_seq, webhook.attempts = entry.seq, 0
                self.delivered += 1
            if len(entries) < self.settings.batch:
                return

    async def _post(
        self, client: httpx.AsyncClient, webhook: Webhook, entry: FunderFeedEntryRow
    ) -> str | None:
        """Send one event; None once acknowledged, else why not."""
        body = json.dumps(cloud_event(entry), ensure_ascii=False, separators=(",", ":")).encode()
        message_id = str(entry.event_id)
        timestamp = int(self._wall_clock())
        headers = {
            "content-type": CLOUDEVENT_MEDIA_TYPE,
            "user-agent": "rebond-funding-webhooks/1",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(webhook.secret, message_id, timestamp, body),
        }
        try:
            resp = await client.post(
                webhook.url, content=body, headers=headers, timeout=self.settings.timeout_s
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= resp.status_code < 300:
            return None
        return f"HTTP {resp.status_code}"

    async def _acknowledged(self, webhook: Webhook, seq: int) -> bool:
        async with self._session_factory() as session:
            result = await session.exec(
                sa.update(FunderWebhookRow)
                .where(col(FunderWebhookRow.id) == webhook.id)
                .values(delivered_seq=seq, attempts=0, next_attempt_at=None, last_error=None)
            )
            await session.commit()
        return bool(getattr(result, "rowcount", 0))

    async def _failed(self, webhook: Webhook, error: str) -> None:
        attempts = webhook.attempts + 1
        delay = retry_delay_s(
            attempts, base_s=self.settings.retry_base_s, max_s=self.settings.retry_max_s
        )
        log.info(
            "webhook delivery failed; retrying later",
            webhook=str(webhook.id),
            attempts=attempts,
            retry_in_s=delay,
            error=error,
        )
        async with self._session_factory() as session:
            await session.exec(
                sa.update(FunderWebhookRow)
                .where(col(FunderWebhookRow.id) == webhook.id)
                .values(
                    attempts=attempts,
                    next_attempt_at=self._now() + timedelta(seconds=delay),
                    last_error=error,
                )
            )
            await session.commit()


async def _first_of(ticket: asyncio.Event, stopping: asyncio.Event, at_most_s: float) -> None:
    waits = [asyncio.ensure_future(ticket.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waits, timeout=at_most_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
