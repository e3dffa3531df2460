"""Prometheus metrics of one service: what `/metrics` exposes, and where each figure
comes from.

Every app has its own `CollectorRegistry` (tests build many apps in one process; the
global registry would refuse the second). Three kinds of figures:

- **counted as it happens**: HTTP requests (the middleware below);
- **kept by the workers and read at scrape time**: events consumed by topic, type and
  outcome, retries and dead letters (the consumer runner's counts), events published by
  topic and type, the relay's leadership (the relay's own state) — nothing of the
  workers imports Prometheus;
- **measured at scrape time**: consumer lag per partition (high-water mark minus
  position), the dead-letter topics' depth, the outbox backlog and the age of its
  oldest row (one query), the database pools' use. A source refreshes these before each
  exposition, with a bound on its wait, so a scrape never hangs on a down dependency —
  the figure is then absent (and `rebond_scrape_errors_total` counts it).

Names follow Prometheus' conventions: base units in the name (`_seconds`), `_total` for
counters, bounded labels only (route templates, never raw paths or ids; topic names
from the catalogue; partitions of those topics). One uvicorn process per pod: no
multiprocess mode.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logging import get_logger

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from shared.messaging.consumer import ConsumerRunner
    from shared.messaging.relay import OutboxRelay

log = get_logger(__name__)

METRICS_PATH = "/metrics"
#: The probes and the scrape itself are not requests anyone waits on: not counted, so
#: that a scrape every 15 s does not dominate a quiet service's figures.
UNCOUNTED_PATHS = frozenset({METRICS_PATH, "/healthz", "/readyz"})
#: Requests that matched no route: one label value, whatever the path asked for.
UNMATCHED_ROUTE = "unmatched"
#: From a cached read (≈1 ms) to a slow import (30 s).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: What one scrape waits for a source measuring at scrape time (Prometheus' default
#: scrape timeout is 10 s; several sources refresh concurrently).
REFRESH_TIMEOUT_S = 3.0


class Source(Protocol):
    """A group of figures measured at scrape time (`refresh`) and exposed (`collect`)."""

    name: str

    async def refresh(self) -> None: ...

    def collect(self) -> Iterable[Metric]: ...


class ServiceMetrics:
    """The registry of one service's app, its HTTP instruments and its sources."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "rebond_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["service", "route", "method", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "rebond_http_request_duration_seconds",
            "Time to answer an HTTP request (until the response's last byte).",
            ["service", "route", "method"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.scrape_errors = Counter(
            "rebond_scrape_errors",
            "Scrape-time measurements that failed or timed out (their figures are absent).",
            ["service", "source"],
            registry=self.registry,
        )
        self._sources: list[Source] = []

    def add(self, source: Source) -> None:
        self._sources.append(source)
        self.registry.register(source)

    async def exposition(self) -> tuple[bytes, str]:
        """The text format, after every source measured what it measures at scrape time."""
        results = await asyncio.gather(
            *(asyncio.wait_for(s.refresh(), REFRESH_TIMEOUT_S) for s in self._sources),
            return_exceptions=True,
        )
        for source, result in zip(self._sources, results, strict=True):
            if isinstance(result, BaseException):
                self.scrape_errors.labels(self.service, source.name).inc()
                log.debug("metrics source failed", source=source.name, error=repr(result))
        # The classic text format (what the client library itself serves by default): every
        # Prometheus 2.x and 3.x reads it; our names need no UTF-8 escaping.
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4


def route_of(scope: Scope) -> str:
    """The matched route's template (`/sites/{siret}`), never the raw path."""
    route = scope.get("route")
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"  # a mounted app (static pages): one label, not per file
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    """Counts and times every request by route template. Pure ASGI, like the others."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route, method = route_of(scope), scope["method"]
            m = self.metrics
            m.http_requests.labels(m.service, route, method, str(status_code)).inc()
            m.http_duration.labels(m.service, route, method).observe(time.perf_counter() - started)


# --- the workers' figures ------------------------------------------------------------------


class ConsumerSource:
    """One consumer group's counts, lag per partition, dead-letter depth and poll age."""

    def __init__(self, service: str, runner: ConsumerRunner[Any]) -> None:
        self.service = service
        self.runner = runner
        self.name = f"consumer {runner.name}"
        self._lag: Mapping[tuple[str, int], int] = {}
        self._dlq: Mapping[str, int] = {}

    async def refresh(self) -> None:
        self._lag, self._dlq = {}, {}
        self._lag = await self.runner.lag()
        self._dlq = await self.runner.dead_letter_depths()

    def collect(self) -> Iterable[Metric]:
        s, c = self.service, self.runner.name
        consumed = CounterMetricFamily(
            "rebond_events_consumed",
            "Events read by a consumer group, by topic, event type and outcome"
            " (processed, duplicate, ignored, dead_lettered, failed).",
            labels=["service", "consumer", "topic", "type", "outcome"],
        )
        for (topic, event_type, outcome), n in sorted(self.runner.counts.items()):
            consumed.add_metric([s, c, topic, event_type, outcome], n)
        yield consumed
        stats = self.runner.stats
        retries = CounterMetricFamily(
            "rebond_consumer_handler_retries",
            "Handler failures retried in place (not the infrastructure's: those pause).",
            labels=["service", "consumer"],
        )
        retries.add_metric([s, c], stats.retries)
        yield retries
        pauses = CounterMetricFamily(
            "rebond_consumer_transient_pauses",
            "Pauses of a consumer after an infrastructure failure (database, broker).",
            labels=["service", "consumer"],
        )
        pauses.add_metric([s, c], stats.transient_pauses)
        yield pauses
        dead = CounterMetricFamily(
            "rebond_consumer_dead_lettered",
            "Messages this consumer group sent to a dead-letter topic, with the reason.",
            labels=["service", "consumer"],
        )
        dead.add_metric([s, c], stats.dead_lettered)
        yield dead
        lag = GaugeMetricFamily(
            "rebond_consumer_lag_offsets",
            "Offsets of an assigned partition not yet handled: high-water mark minus the"
            " consumer's position (messages, and the relay's transaction markers among them;"
            " 0 once caught up).",
            labels=["service", "consumer", "topic", "partition"],
        )
        for (topic, partition), n in sorted(self._lag.items()):
            lag.add_metric([s, c, topic, str(partition)], n)
        yield lag
        depth = GaugeMetricFamily(
            "rebond_dead_letter_messages",
            "Messages held in a dead-letter topic this consumer group writes to (end offset"
            " minus the earliest kept one): not empty means something waits for a re-drive.",
            labels=["service", "topic"],
        )
        for topic, n in sorted(self._dlq.items()):
            depth.add_metric([s, topic], n)
        yield depth
        since = self.runner.seconds_since_poll()
        if since is not None:
            poll = GaugeMetricFamily(
                "rebond_consumer_seconds_since_poll",
                "Time since the consumer's loop last polled the broker (stuck when it"
                " nears the poll interval).",
                labels=["service", "consumer"],
            )
            poll.add_metric([s, c], since)
            yield poll
        paused = GaugeMetricFamily(
            "rebond_consumer_waiting_for_dependency",
            "1 while the consumer is paused on an infrastructure failure, else 0.",
            labels=["service", "consumer"],
        )
        paused.add_metric([s, c], 1.0 if self.runner.problem else 0.0)
        yield paused


@dataclass
class _Backlog:
    rows: int = 0
    oldest_age_s: float = 0.0


class RelaySource:
    """The outbox relay: leadership, publications, and the backlog of unsent rows."""

    def __init__(self, service: str, relay: OutboxRelay) -> None:
        self.service = service
        self.relay = relay
        self.name = "outbox relay"
        self._backlog: _Backlog | None = None

    async def refresh(self) -> None:
        self._backlog = None
        rows, oldest_age_s = await self.relay.backlog()
        self._backlog = _Backlog(rows, oldest_age_s)

    def collect(self) -> Iterable[Metric]:
        s = self.service
        leader = GaugeMetricFamily(
            "rebond_relay_leader",
            "1 while this process holds the outbox relay's lease and publishes, else 0.",
            labels=["service"],
        )
        leader.add_metric([s], 1.0 if self.relay.lease.held else 0.0)
        yield leader
        published = CounterMetricFamily(
            "rebond_events_published",
            "Events this process's relay published to Kafka, by topic and event type.",
            labels=["service", "topic", "type"],
        )
        for (topic, event_type), n in sorted(self.relay.published_by.items()):
            published.add_metric([s, topic, event_type], n)
        yield published
        failing = GaugeMetricFamily(
            "rebond_relay_failing",
            "1 while the relay's last pass failed (its rows stay unsent and are retried).",
            labels=["service"],
        )
        failing.add_metric([s], 1.0 if self.relay.problem else 0.0)
        yield failing
        if self._backlog is not None:
            pending = GaugeMetricFamily(
                "rebond_outbox_pending_events",
                "Outbox rows committed but not yet published (the whole service's).",
                labels=["service"],
            )
            pending.add_metric([s], self._backlog.rows)
            yield pending
            age = GaugeMetricFamily(
                "rebond_outbox_oldest_pending_age_seconds",
                "Age of the oldest unpublished outbox row (0 when none waits).",
                labels=["service"],
            )
            age.add_metric([s], self._backlog.oldest_age_s)
            yield age


class PoolSource:
    """The database connection pools' use (checked out, idle, size, overflow)."""

    name = "database pools"

    def __init__(self, service: str, engines: Mapping[str, AsyncEngine]) -> None:
        self.service = service
        self.engines = engines

    async def refresh(self) -> None:
        return None  # read from the pool objects, in memory

    def collect(self) -> Iterable[Metric]:
        use = GaugeMetricFamily(
            "rebond_db_pool_connections",
            "Database connections by pool and state (checked_out, idle, overflow);"
            " absent for SQLite's per-use connections.",
            labels=["service", "pool", "state"],
        )
        size = GaugeMetricFamily(
            "rebond_db_pool_size",
            "Connections a pool keeps open (its overflow comes on top).",
            labels=["service", "pool"],
        )
        for pool_name, engine in sorted(self.engines.items()):
            pool: Any = engine.sync_engine.pool
            if not all(hasattr(pool, a) for a in ("size", "checkedout", "checkedin", "overflow")):
                continue
            use.add_metric([self.service, pool_name, "checked_out"], pool.checkedout())
            use.add_metric([self.service, pool_name, "idle"], pool.checkedin())
            use.add_metric([self.service, pool_name, "overflow"], max(0, pool.overflow()))
            size.add_metric([self.service, pool_name], pool.size())
        yield use
        yield size


def service_metrics(
    service: str,
    *,
    consumers: Sequence[ConsumerRunner[Any]] = (),
    relay: OutboxRelay | None = None,
    engines: Mapping[str, AsyncEngine] | None = None,
) -> ServiceMetrics:
    """A service's metrics: HTTP, plus its consumers, relay and pools when it has them."""
    metrics = ServiceMetrics(service)
    for runner in consumers:
        metrics.add(ConsumerSource(service, runner))
    if relay is not None:
        metrics.add(RelaySource(service, relay))
    if engines:
        metrics.add(PoolSource(service, engines))
    return metrics
