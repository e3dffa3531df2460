"""Issue 14's "done when": one `traceparent`, followed from the crisis cell's HTTP request
declaring a closure to the lines the campaigns and detection consumers log about it.

The registry, campaigns and detection run as real processes (`python -m services.<name>
serve`, the fault suite's harness) on the session's broker and PostgreSQL, configured by
their environment only, with no OTLP endpoint: the trace ids are in their JSON logs and
the `traceparent` Kafka header even when no span is exported."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.events.catalogue import CAMPAIGNS, SITES
from tests.faults.harness import BRIDGESTONE, Stack, until
from tests.support.infra import Broker, Database
from tests.support.kafka import Message, read_topic

pytestmark = pytest.mark.e2e


@pytest.fixture
async def services(broker: Broker, postgres: Database, tmp_path: Path) -> AsyncIterator[Stack]:
    names = ("site_registry", "campaigns", "detection")
    urls = {
        n: await postgres.create_database(f"e2e_tr_{n[:4]}_{uuid.uuid4().hex[:8]}") for n in names
    }
    stack = Stack(
        bootstrap=broker.bootstrap_servers,
        prefix=f"e2etr{uuid.uuid4().hex[:8]}.",
        database_urls=urls,
        log_dir=tmp_path,
        # No collector: nothing is exported, ids are still in the logs and the headers.
        extra_env={
            n: {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}
            for n in names
        },
    )
    try:
        await stack.start(names)
        yield stack
    finally:
        stack.stop()


def traced_lines(stack: Stack, service: str, event: str) -> list[dict[str, Any]]:
    return [line for line in stack.first(service).log_lines(event) if line.get("event") == event]


def trace_id_of(message: Message) -> str:
    version, trace_id, _span_id, _flags = message.headers["traceparent"].split("-")
    assert version == "00"
    return trace_id


async def test_one_traceparent_from_the_shock_request_to_the_consumers_log_lines(
    services: Stack,
) -> None:
    stack = services
    trace_id = f"{random.getrandbits(128):032x}"
    caller = f"00-{trace_id}-{random.getrandbits(64):016x}-01"
    async with httpx.AsyncClient(timeout=15) as client:
        resp = await client.post(
            f"{stack.url('site_registry')}/closure-shocks",
            json={"site_id": BRIDGESTONE, "announced_on": "2020-09-16", "jobs_lost": 900},
            headers={**stack.cell, "traceparent": caller},
        )
    assert resp.status_code == 201, resp.text

    # (a) campaigns launches the campaign, in the request's trace
    launched = await until(
        lambda: _lines(stack, "campaigns", "campaign launched"), timeout=40, what="the launch"
    )
    # (b) detection enters the announcement in its ledger, in the same trace
    entered = await until(
        lambda: _lines(stack, "detection", "closure announcement entered in the ledger"),
        timeout=20,
        what="the ledger line",
    )
    assert [line["trace_id"] for line in launched] == [trace_id]
    assert [line["trace_id"] for line in entered] == [trace_id]
    # every line of the request in the registry carries it too (the "request" line)
    (request,) = [
        line
        for line in traced_lines(stack, "site_registry", "request")
        if line.get("path") == "/closure-shocks"
    ]
    assert request["trace_id"] == trace_id and request["status"] == 201
    # no log line of a probe or of the demo import was given that trace
    demo = traced_lines(stack, "site_registry", "outbox relay leads")
    assert all(line.get("trace_id") != trace_id for line in demo)

    # The Kafka messages carry it, as a standard W3C header a third party can read.
    sites = await read_topic(
        stack.bootstrap,
        SITES.physical(stack.prefix),
        until=lambda ms: any(m.headers["ce_type"].endswith("closure_announced.v1") for m in ms),
    )
    (announced,) = [m for m in sites if m.headers["ce_type"].endswith("closure_announced.v1")]
    assert trace_id_of(announced) == trace_id
    assert announced.headers["traceparent"] != caller  # it names the relay's publish span
    campaigns = await read_topic(
        stack.bootstrap,
        CAMPAIGNS.physical(stack.prefix),
        until=lambda ms: any(m.headers["ce_type"].endswith("campaign_launched.v1") for m in ms),
    )
    (launch,) = [m for m in campaigns if m.headers["ce_type"].endswith("campaign_launched.v1")]
    assert trace_id_of(launch) == trace_id


async def _lines(stack: Stack, service: str, event: str) -> list[dict[str, Any]]:
    return traced_lines(stack, service, event)
