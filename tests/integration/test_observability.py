"""`/metrics` and `/readyz` of a real service on the real broker and database: the outbox
backlog and its age grow with committed rows and drain when the relay publishes; a
consumer's lag shows what it fetched but has not handled, and returns to 0; a consumer
stuck past its poll interval makes the service not ready, naming it, until it polls
again; an unreachable broker makes it not ready, naming the broker."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.site_registry.bootstrap import SiteRegistry, bootstrap
from services.site_registry.entrypoints.http import create_app
from services.site_registry.service_layer import batch_jobs
from services.site_registry.service_layer.unit_of_work import SiteRegistryUnitOfWork
from shared.events.catalogue import SITES, event_registry
from shared.events.envelope import Envelope
from shared.events.site_registry import SiteRegistered, SiteState
from shared.messaging.consumer import ConsumerRunner
from shared.messaging.kafka import BrokerProbe
from tests.integration.conftest import registry_settings
from tests.integration.test_messaging import siret_for, site
from tests.support.infra import Broker
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(app: Any) -> Samples:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample of `name` whose labels include `labels` (None when there is none)."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert len(found) <= 1, f"{name}{labels}: {len(found)} samples"
    return found[0] if found else None


async def readyz(app: Any) -> tuple[int, dict[str, Any]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        response = await client.get("/readyz")
    return response.status_code, response.json()


async def test_the_outbox_backlog_grows_with_commits_and_drains_when_published(
    registry: SiteRegistry,
) -> None:
    app = create_app(registry, run_workers=False)
    before = await scrape(app)
    assert value(before, "rebond_outbox_pending_events", service="site_registry") == 0
    assert value(before, "rebond_outbox_oldest_pending_age_seconds") == 0
    assert value(before, "rebond_relay_leader", service="site_registry") == 0

    n = 7
    await batch_jobs.load_sites(
        registry.uow, [site(siret_for(900 + i)) for i in range(n)], registry.refs
    )
    waiting = await scrape(app)
    assert value(waiting, "rebond_outbox_pending_events") == n
    # The oldest row's age is the database's view of time: positive, and not absurd.
    age = value(waiting, "rebond_outbox_oldest_pending_age_seconds")
    assert age is not None and 0 <= age < 60

    assert await registry.relay.publish_pending() == n
    drained = await scrape(app)
    assert value(drained, "rebond_outbox_pending_events") == 0
    assert value(drained, "rebond_outbox_oldest_pending_age_seconds") == 0
    assert value(drained, "rebond_relay_leader") == 1  # publishing took the lease
    published = value(
        drained,
        "rebond_events_published_total",
        topic=SITES.name,
        type="rebond.site_registry.site_registered.v1",
    )
    assert published == n
    # The pools' use is there (PostgreSQL's queue pool; SQLite's per-use connections have
    # no pool figures, and say so by their absence).
    pooled = value(drained, "rebond_db_pool_size", pool="main")
    assert pooled is None or pooled > 0


class Gate:
    """A handler that waits until opened: the consumer holds fetched messages meanwhile."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.entered = asyncio.Event()
        self.seen: list[str] = []

    async def __call__(self, uow: SiteRegistryUnitOfWork, env: Envelope[SiteState]) -> None:
        self.entered.set()
        await self.open.wait()
        self.seen.append(str(env.id))


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def test_lag_shows_held_messages_a_stuck_consumer_is_not_ready_then_both_recover(
    registry: SiteRegistry, broker: Broker, topic_prefix: str
) -> None:
    gate = Gate()
    runner: ConsumerRunner[SiteRegistryUnitOfWork] = ConsumerRunner(
        name=f"{topic_prefix}obs-{uuid.uuid4().hex[:6]}",
        topics=[SITES],
        handlers={SiteRegistered.event_type: gate},
        uow_factory=registry.uow,
        registry=event_registry(),
        bootstrap_servers=broker.bootstrap_servers,
        producer_factory=registry.producer,
        topic_prefix=topic_prefix,
        transaction_size=1,
        # Stuck after 3 s without a poll (Kafka's default is 5 minutes).
        max_poll_interval_ms=3000,
        session_timeout_ms=6000,
    )
    registry.workers = lambda: (registry.relay, runner)  # type: ignore[method-assign]
    app = create_app(registry, run_workers=True)
    n = 6
    await batch_jobs.load_sites(
        registry.uow, [site(siret_for(950 + i)) for i in range(n)], registry.refs
    )
    assert await registry.relay.publish_pending() == n

    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(gate.entered.wait(), 30)
        held = await eventually(
            lambda: scrape(app),
            # Offsets: the messages, and the commit markers of the relay's transactions.
            lambda s: total(s, "rebond_consumer_lag_offsets", consumer=runner.name) >= n,
            timeout=15,
            what="the fetched messages counted as lag",
        )
        assert value(held, "rebond_consumer_waiting_for_dependency", consumer=runner.name) == 0
        _, body = await eventually(
            lambda: readyz(app), lambda r: r[0] == 503, timeout=15, what="not ready"
        )
        part = body["checks"][f"consumer {runner.name}"]
        assert part["status"] == "failing" and "no poll for" in part["detail"], body
        assert body["checks"]["database"]["status"] == "ok"
        assert body["checks"]["broker"]["status"] == "ok"
        assert body["checks"]["relay"] == {"status": "ok", "detail": "leader"}
        assert f"consumer {runner.name}" in body["detail"]

        gate.open.set()
        await eventually(lambda: readyz(app), lambda r: r[0] == 200, timeout=30, what="ready")
        # Stuck past its poll interval, the consumer left its group: offsets it committed
        # after that were refused, so it may read some messages again on rejoining. The
        # inbox turns those into duplicates; what counts is that each took effect once.
        done = await eventually(
            lambda: scrape(app),
            lambda s: (
                total(s, "rebond_events_consumed_total", consumer=runner.name, outcome="processed")
                == n
                and total(s, "rebond_consumer_lag_offsets", consumer=runner.name) == 0
            ),
            timeout=30,
            what="every message handled and the lag back to 0",
        )
        consumed = {
            dict(labels)["outcome"]
            for (name, labels), v in done.items()
            if name == "rebond_events_consumed_total"
            and v
            and dict(labels)["consumer"] == runner.name
        }
        assert consumed <= {"processed", "duplicate"}, consumed
        assert len(set(gate.seen)) == n
        since = value(done, "rebond_consumer_seconds_since_poll", consumer=runner.name)
        assert since is not None and since < 3
    finally:
        gate.open.set()
        await runner.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the socket is: nothing listens


async def test_an_unreachable_broker_makes_the_service_not_ready_naming_it(
    broker: Broker, database_url: str, topic_prefix: str
) -> None:
    settings = registry_settings(broker, database_url, topic_prefix)
    settings.kafka_bootstrap_servers = f"127.0.0.1:{closed_port()}"
    away = bootstrap(settings)
    await away.migrate()
    try:
        status, body = await readyz(create_app(away, run_workers=False))
        assert status == 503, body
        assert body["checks"]["broker"]["status"] == "failing"
        assert body["checks"]["database"] == {"status": "ok", "detail": "ok"}
        assert body["detail"].startswith("broker: ")
        assert "127.0.0.1" not in body["detail"]  # no address for an unauthenticated caller
    finally:
        await away.aclose()
    # The same probe on the session's broker answers.
    probe = BrokerProbe(broker.bootstrap_servers)
    try:
        assert await probe.problem() is None
    finally:
        await probe.close()
