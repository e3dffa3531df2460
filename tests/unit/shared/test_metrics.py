"""The metrics' shape without a broker or database: HTTP requests counted by route
template (never the raw path), probes left out, the workers' figures exposed from their
own counts, and every name and label following Prometheus' conventions."""

from __future__ import annotations

import contextlib
import re
import types
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.entrypoints.http import create_app
from shared.auth import AuthConfig
from shared.events.catalogue import SITES, event_registry
from shared.messaging.consumer import ConsumerRunner, Outcome
from shared.metrics import (
    UNMATCHED_ROUTE,
    ConsumerSource,
    ServiceMetrics,
    route_of,
)

pytestmark = pytest.mark.unit

CONFIG = AuthConfig("unit-tests-secret-of-at-least-32-characters!")
NAME = re.compile(r"^rebond_[a-z][a-z0-9_]*[a-z0-9]$")
#: Every label any Rebond metric may carry: each has a bounded set of values.
LABELS = {
    "service",
    "route",
    "method",
    "status",
    "consumer",
    "topic",
    "type",
    "outcome",
    "partition",
    "pool",
    "state",
    "source",
    "le",
}


def registry_app() -> Any:
    stand_in = types.SimpleNamespace(
        service="site_registry",
        auth=CONFIG,
        relay=None,
        uow=None,
        session_factory=contextlib.nullcontext,
        workers=tuple,
        engines=dict,
    )
    return create_app(cast(SiteRegistry, stand_in), run_workers=False)


async def get(app: Any, *paths: str) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
        for path in paths:
            await client.get(path)
        response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


def samples(text: str) -> Iterator[Sample]:
    for family in text_string_to_metric_families(text):
        yield from family.samples


async def test_requests_are_counted_by_route_template_and_status_never_by_raw_path() -> None:
    app = registry_app()
    text = await get(
        app,
        "/sites/36120038900019",
        "/sites/12345678900011",
        "/no/such/path/42",
        "/healthz",
        "/readyz",
    )
    counted = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in samples(text)
        if s.name == "rebond_http_requests_total"
    }
    # Two different sirets, one series; no token: 401, counted all the same.
    assert counted == {("/sites/{siret}", "GET", "401"): 2, (UNMATCHED_ROUTE, "GET", "404"): 1}
    assert "36120038900019" not in text and "/no/such/path" not in text
    durations = [
        s
        for s in samples(text)
        if s.name == "rebond_http_request_duration_seconds_count"
        and s.labels["route"] == "/sites/{siret}"
    ]
    assert [d.value for d in durations] == [2]


def test_a_mounted_app_is_one_route_label() -> None:
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    mount = Mount("/static", app=StaticFiles(directory=".", check_dir=False))
    assert route_of({"route": mount}) == "/static/{path}"
    assert route_of({}) == UNMATCHED_ROUTE


def runner() -> ConsumerRunner[Any]:
    # Built, never started: nothing connects.
    return ConsumerRunner(
        name="campaigns.sites",
        topics=[SITES],
        handlers={},
        uow_factory=lambda: None,
        registry=event_registry(),
        bootstrap_servers="127.0.0.1:9",
        producer_factory=lambda: None,
        topic_prefix="demo.",
    )


async def test_a_consumers_counts_are_exposed_by_logical_topic_type_and_outcome() -> None:
    r = runner()
    r._count("demo.rebond.site_registry.sites.v1", "rebond.site_registry.site_registered.v1")
    r._count("demo.rebond.site_registry.sites.v1", "t", fresh=False)
    r._count("demo.rebond.site_registry.sites.v1", "t", Outcome.DEAD_LETTERED)
    r.stats.retries = 4
    metrics = ServiceMetrics("campaigns")
    metrics.add(ConsumerSource("campaigns", r))
    body, media_type = await metrics.exposition()
    assert media_type.startswith("text/plain; version=0.0.4")
    consumed = {
        (s.labels["topic"], s.labels["type"], s.labels["outcome"]): s.value
        for s in samples(body.decode())
        if s.name == "rebond_events_consumed_total"
    }
    assert consumed == {
        (SITES.name, "rebond.site_registry.site_registered.v1", "processed"): 1,
        (SITES.name, "t", "duplicate"): 1,
        (SITES.name, "t", "dead_lettered"): 1,
    }
    retries = [s.value for s in samples(body.decode()) if s.name.endswith("retries_total")]
    assert retries == [4]
    # Not started: no lag, no poll age (unknown is absent, never a made-up 0).
    names = {s.name for s in samples(body.decode())}
    assert "rebond_consumer_lag_offsets" not in names
    assert "rebond_consumer_seconds_since_poll" not in names


def test_a_consumer_is_stuck_only_past_its_poll_interval() -> None:
    r = runner()
    assert r.stuck is None  # never polled yet: starting, not stuck
    r._last_poll = 0.0  # monotonic time zero: long ago
    assert r.stuck is not None and "no poll for" in r.stuck
    r._max_poll_interval_ms = 10**12
    assert r.stuck is None


async def test_every_name_and_label_follows_the_conventions() -> None:
    r = runner()
    r._count("demo.rebond.site_registry.sites.v1", "x")
    metrics = ServiceMetrics("campaigns")
    metrics.add(ConsumerSource("campaigns", r))
    text = await get(registry_app(), "/sites/36120038900019")
    body, _ = await metrics.exposition()
    families = [
        *text_string_to_metric_families(text),
        *text_string_to_metric_families(body.decode()),
    ]
    assert families
    for family in families:
        assert NAME.fullmatch(family.name), family.name
        for sample in family.samples:
            assert set(sample.labels) <= LABELS, (family.name, sample.labels)
            if family.type == "counter":
                assert sample.name.endswith(("_total", "_created")), sample.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name  # base unit in the name
