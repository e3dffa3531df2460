"""One trace from a crisis cell's request to what its event causes in other services, on
the real broker and database: the registry's HTTP span continues the caller's
`traceparent`, its outbox row stores the context, the relay publishes the row in a
PRODUCER span and sends a `traceparent` naming it, and the campaigns and detection
consumers run the closure announcement in CONSUMER spans of that trace, whose log lines
and own events (the campaign launched) carry it on. In a consumer's batch (several
messages, one transaction) each message's events carry its own trace; a dead-lettered
message keeps its trace headers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from aiokafka import AIOKafkaProducer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text
from structlog.testing import LogCapture

from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.service_layer.unit_of_work import SiteRegistryUnitOfWork
from shared import tracing
from shared.events.catalogue import CAMPAIGNS, SITES
from shared.events.envelope import Envelope
from shared.events.site_registry import SiteState
from shared.logging import add_trace_ids
from shared.messaging.consumer import ConsumerRunner, PermanentError
from tests.integration.test_consumer_batches import Commits, runner
from tests.integration.test_messaging import siret_for
from tests.support.dsl import BRIDGESTONE, Stack
from tests.support.kafka import Message, read_all, read_topic
from tests.support.waiting import eventually
from tests.unit.detection.builders import site as site_state

pytestmark = pytest.mark.integration

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (installed by the first runtime built), with this
    module's in-memory exporter on it; emptied for each test."""
    provider = tracing.configure_tracing("integration-tests")
    if not isinstance(provider, TracerProvider):
        pytest.skip("OpenTelemetry SDK disabled in this environment")
    if not getattr(provider, "_rebond_integration_exporter", False):
        tracing.export_to(provider, SimpleSpanProcessor(_EXPORTER))
        provider._rebond_integration_exporter = True  # type: ignore[attr-defined]
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    """Every structlog line, with the trace ids the service format adds."""
    capture = LogCapture()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, add_trace_ids, capture]
    )
    yield capture
    structlog.reset_defaults()


def new_ids() -> tuple[str, str]:
    return f"{random.getrandbits(128):032x}", f"{random.getrandbits(64):016x}"


def trace_of(message: Message) -> tuple[str, str]:
    """(trace id, parent span id) of a message's `traceparent`."""
    version, trace_id, span_id, flags = message.headers["traceparent"].split("-")
    assert version == "00" and len(flags) == 2
    return trace_id, span_id


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


async def test_the_shock_request_trace_reaches_the_campaign_launch_and_the_ledger(
    stack: Stack, spans: InMemorySpanExporter, logs: LogCapture
) -> None:
    trace_id, caller_span = new_ids()
    resp = await stack.r.post(
        "/closure-shocks",
        json={"site_id": BRIDGESTONE, "announced_on": "2020-09-16", "jobs_lost": 900},
        headers={**stack.cell, "traceparent": f"00-{trace_id}-{caller_span}-01"},
    )
    assert resp.status_code == 201, resp.text
    await stack.registry.relay.publish_pending()
    prefix = stack.registry.settings.kafka_topic_prefix
    bootstrap = stack.registry.settings.kafka_bootstrap_servers

    # The HTTP span continues the caller's trace.
    (server,) = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.SERVER and s.name == "POST /closure-shocks"
    ]
    assert hex_ids(server)[0] == trace_id
    assert server.parent is not None and f"{server.parent.span_id:016x}" == caller_span
    # its SQL (the outbox insert among it) in the same trace
    sql = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert any(
        hex_ids(s)[0] == trace_id and "outbox_events" in str((s.attributes or {}).values())
        for s in sql
    )

    # The message names the relay's publish span, which is in the caller's trace.
    sites = await read_all(bootstrap, SITES.physical(prefix))
    (announced,) = [m for m in sites if m.headers["ce_type"].endswith("closure_announced.v1")]
    assert trace_of(announced)[0] == trace_id
    (send,) = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.PRODUCER and hex_ids(s)[1] == trace_of(announced)[1]
    ]
    assert hex_ids(send)[0] == trace_id
    assert send.name == f"send {SITES.physical(prefix)}"
    # the demo sites, loaded by a job outside any request, carry no trace header
    assert not any("traceparent" in m.headers for m in sites if m is not announced)

    # Campaigns launches the campaign in the consumer span of that message, and says so
    # in a log line of the trace; the campaign's event carries the trace on.
    campaigns_topic = CAMPAIGNS.physical(prefix)
    launched = await read_topic(
        bootstrap,
        campaigns_topic,
        until=lambda ms: any(m.headers["ce_type"].endswith("campaign_launched.v1") for m in ms),
    )
    (launch,) = [m for m in launched if m.headers["ce_type"].endswith("campaign_launched.v1")]
    assert trace_of(launch)[0] == trace_id
    assert launch.headers["ce_correlationid"] == announced.headers["ce_correlationid"]

    def consumer_spans() -> dict[str, ReadableSpan]:
        return {
            str((s.attributes or {})["messaging.consumer.group.name"]): s
            for s in spans.get_finished_spans()
            if s.kind is SpanKind.CONSUMER
            and (s.attributes or {}).get("cloudevents.event_id") == announced.headers["ce_id"]
        }

    groups = {f"{prefix}campaigns.sites", f"{prefix}detection.ledger"}
    by_group = await eventually(
        lambda: asyncio.sleep(0, consumer_spans()), lambda c: groups <= set(c), what="spans"
    )
    for group in groups:
        span = by_group[group]
        assert hex_ids(span)[0] == trace_id
        assert span.parent is not None and f"{span.parent.span_id:016x}" == hex_ids(send)[1]
        assert (span.attributes or {})["cloudevents.event_type"] == announced.headers["ce_type"]

    def line(event: str) -> MutableMapping[str, Any] | None:
        return next((e for e in logs.entries if e["event"] == event), None)

    campaign_line = await eventually(
        lambda: asyncio.sleep(0, line("campaign launched")), lambda e: e is not None, what="log"
    )
    ledger_line = line("closure announcement entered in the ledger")
    assert campaign_line is not None and ledger_line is not None
    assert campaign_line["trace_id"] == ledger_line["trace_id"] == trace_id
    assert campaign_line["span_id"] == hex_ids(by_group[f"{prefix}campaigns.sites"])[1]
    assert ledger_line["span_id"] == hex_ids(by_group[f"{prefix}detection.ledger"])[1]


async def produce_batch(registry: SiteRegistry, traces: dict[str, tuple[str, str]]) -> None:
    """One record batch on partition 0 (so one fetch, one consumer batch): a site event
    per key, each with the `traceparent` of its own trace."""
    producer = AIOKafkaProducer(bootstrap_servers=registry.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        batch = producer.create_batch()
        for siret, (trace_id, span_id) in traces.items():
            env = Envelope.new(site_state(siret, siren=siret[:9]), source="site_registry")
            headers = [*env.headers(), ("traceparent", f"00-{trace_id}-{span_id}-01".encode())]
            assert batch.append(
                key=siret.encode(), value=env.value(), timestamp=None, headers=headers
            )
        batch.close()
        topic = SITES.physical(registry.settings.kafka_topic_prefix)
        await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


async def outbox_trace_ids(registry: SiteRegistry) -> dict[str, str | None]:
    """Site key → the trace id stored with the outbox row of that key's event."""
    async with registry.session_factory() as s:
        rows = (await s.execute(text("SELECT key, headers FROM outbox_events"))).all()
    out = {}
    for key, headers in rows:
        stored = dict(json.loads(headers) if isinstance(headers, str) else headers)
        out[key] = stored["traceparent"].split("-")[1] if "traceparent" in stored else None
    return out


async def consume_until(
    registry: SiteRegistry,
    handler: Any,
    commits: Commits,
    done: Any,
    what: str,
) -> ConsumerRunner[SiteRegistryUnitOfWork]:
    prefix = registry.settings.kafka_topic_prefix
    consumer = runner(
        registry, handler, name=f"{prefix}trace-{uuid.uuid4().hex[:6]}", uow_factory=commits
    )
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(done, what=what)
    finally:
        await consumer.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return consumer


async def republish(uow: SiteRegistryUnitOfWork, env: Envelope[SiteState]) -> None:
    uow.publish(env.payload)  # an event of the handler's own, staged with its message


async def test_a_batch_in_one_transaction_stages_each_messages_events_in_its_own_trace(
    registry: SiteRegistry, spans: InMemorySpanExporter
) -> None:
    traces = {siret_for(300 + n): new_ids() for n in range(3)}
    await produce_batch(registry, traces)
    commits = Commits(registry)

    async def all_staged() -> bool:
        return len(await outbox_trace_ids(registry)) == len(traces)

    consumer = await consume_until(registry, republish, commits, all_staged, "3 outbox rows")

    assert commits.count == 1 and consumer.stats.batch_fallbacks == 0  # one transaction
    # the last message's events are staged by the commit: still under its span
    assert await outbox_trace_ids(registry) == {k: t for k, (t, _) in traces.items()}
    process = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert sorted(hex_ids(s)[0] for s in process) == sorted(t for t, _ in traces.values())
    for span in process:
        parent = span.parent
        assert parent is not None and parent.is_remote
        assert (hex_ids(span)[0], f"{parent.span_id:016x}") in traces.values()


async def test_a_dead_lettered_message_keeps_its_trace_the_others_keep_theirs(
    registry: SiteRegistry, spans: InMemorySpanExporter
) -> None:
    traces = {siret_for(310 + n): new_ids() for n in range(3)}
    poison = siret_for(311)

    async def handler(uow: SiteRegistryUnitOfWork, env: Envelope[SiteState]) -> None:
        if env.payload.site_id == poison:
            raise PermanentError("this site can never apply")
        await republish(uow, env)

    await produce_batch(registry, traces)
    dlq_topic = SITES.physical(registry.settings.kafka_topic_prefix) + ".dlq"
    commits = Commits(registry)

    async def applied() -> bool:
        return len(await outbox_trace_ids(registry)) == 2

    consumer = await consume_until(registry, handler, commits, applied, "2 outbox rows")
    dead = await read_topic(
        registry.settings.kafka_bootstrap_servers, dlq_topic, until=lambda ms: bool(ms)
    )

    assert consumer.stats.batch_fallbacks == 1  # rolled back, then one message at a time
    healthy = {k: t for k, (t, _) in traces.items() if k != poison}
    assert await outbox_trace_ids(registry) == healthy
    (message,) = dead
    assert message.headers["traceparent"] == "00-{}-{}-01".format(*traces[poison])
    assert message.headers["dlq_reason"] == "this site can never apply"
