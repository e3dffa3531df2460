"""The campaigns service's composition root: settings → runtime (engine, relay, producers),
the consumer of site events, the commands and their clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from services.campaigns.service_layer.handlers import LaunchDefaults, SiteEventHandlers
from services.campaigns.service_layer.unit_of_work import CampaignsUnitOfWork
from services.campaigns.settings import CampaignsSettings
from shared.clock import Clock, system_now
from shared.db import is_sqlite
from shared.events.catalogue import SITES
from shared.messaging.relay import AfterPublish
from shared.runtime import ServiceRuntime, Worker

SERVICE = "campaigns"
MIGRATIONS = Path(__file__).parent / "migrations"
#: connections of the consultants' read pool (PostgreSQL), beside the main pool's; no
#: overflow: a burst waits for a pooled connection rather than opening (TLS, auth) and
#: closing one per request, which cost more than the read itself
READ_POOL_SIZE = 10

T = TypeVar("T")


class Campaigns(ServiceRuntime):
    settings: CampaignsSettings

    def __init__(
        self,
        settings: CampaignsSettings,
        *,
        now: Callable[[], datetime] = system_now,
        after_publish: AfterPublish | None = None,
    ) -> None:
        super().__init__(SERVICE, settings, MIGRATIONS, after_publish=after_publish)
        self.clock = Clock(now)
        self.site_handlers = SiteEventHandlers(
            LaunchDefaults(
                budget_days=settings.default_budget_days,
                cost_per_visit_days=settings.default_cost_per_visit_days,
                daily_cap=settings.default_daily_cap,
                period_weeks=settings.default_period_weeks,
                roster=tuple(settings.default_roster),
                territory_rosters={t: tuple(r) for t, r in settings.territory_rosters.items()},
            ),
            self.clock,
        )
        self.consumer = self.consumer_runner("sites", [SITES], self.site_handlers.table(), self.uow)
        self.read_engine = self._read_engine()
        # FIFO: a request waiting for a pooled connection is served before later ones.
        # The pool's own queue lets a newcomer take a connection just returned ahead of
        # a woken waiter, which then queues again at the end: under 200 concurrent reads
        # a few waited seconds while most passed (the p99 of benchmark 2).
        self._read_slots = asyncio.Semaphore(READ_POOL_SIZE)

    def engines(self) -> Mapping[str, AsyncEngine]:
        if self.read_engine is self.engine:
            return super().engines()
        return {**super().engines(), "read": self.read_engine}

    def _read_engine(self) -> AsyncEngine:
        """The engine of the consultants' single-statement reads (`autocommit_read`).

        On PostgreSQL, a pool of its own in autocommit, without the main pool's ping on
        checkout: a read was 4 round trips (ping, BEGIN, SELECT, ROLLBACK), it is one. A
        single statement sees one snapshot either way. The ping's job, never handing out
        a connection the server dropped, is done by `autocommit_read`'s one retry. On
        SQLite (no ping, and a SELECT opens no transaction) the main engine serves."""
        url = self.settings.resolved_database_url()
        if is_sqlite(url):
            return self.engine
        return create_async_engine(
            url,
            pool_size=READ_POOL_SIZE,
            max_overflow=0,
            pool_pre_ping=False,
            isolation_level="AUTOCOMMIT",
        )

    async def autocommit_read(self, read: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`read` on a connection of the read engine; once more on a fresh connection if
        the first one turns out dead (the database restarted since it was pooled: the
        failure invalidates the pool). Only for reads: running one twice is harmless. At
        most `READ_POOL_SIZE` at a time, in the order they came (`_read_slots`)."""
        async with self._read_slots:
            try:
                async with self.read_engine.connect() as conn:
                    return await read(conn)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
            async with self.read_engine.connect() as conn:
                return await read(conn)

    async def aclose(self) -> None:
        await super().aclose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()

    def uow(self) -> CampaignsUnitOfWork:
        return CampaignsUnitOfWork(
            self.session_factory, source=SERVICE, on_commit_with_events=self.relay.notify
        )

    def workers(self) -> Sequence[Worker]:
        return (self.relay, self.consumer)


def bootstrap(
    settings: CampaignsSettings | None = None,
    *,
    now: Callable[[], datetime] = system_now,
    after_publish: AfterPublish | None = None,
) -> Campaigns:
    return Campaigns(settings or CampaignsSettings(), now=now, after_publish=after_publish)
