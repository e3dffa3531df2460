"""`make demo` end to end, on the session's real Kafka broker and PostgreSQL databases.

The system is started as `make run` starts it (its script, `start_rebond`), with one
PostgreSQL database per service and a random topic prefix; `deploy/local/demo.py` then
finds it through its `local-run.json`, as beside any `make run`, and replays the
Béthune case through the public APIs. Checked from the outside: the ledger at 900 jobs
compensated (450 endogenous, 450 exogenous), France Relance's three regional reviews
(1 Béthune project of 25 selected, 18 of 50, 65 of 200) with as many awards recorded,
and, once every outbox is published and every consumer has caught up, no message on
any dead-letter topic.
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from shared.events.catalogue import ALL_TOPICS, topics_consumed_by
from tests.support.browser import RunningRebond, start_rebond, stop_rebond
from tests.support.infra import Broker, Database
from tests.support.kafka import read_all
from tests.support.metrics import Scraper, names, scrape, total

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("site_registry", "campaigns", "detection", "funding")
pytestmark = pytest.mark.timeout(600)


def load(name: str) -> ModuleType:
    """A module of deploy/local (scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"deploy_local_{name}", ROOT / f"deploy/local/{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while built
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def databases(postgres: Database) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        name: asyncio.run(postgres.create_database(f"demo_{name}_{suffix}")) for name in SERVICES
    }


@pytest.fixture
def rebond(
    broker: Broker,
    databases: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RunningRebond]:
    # This checkout's code for the scripts, whatever copy of the project is installed.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    running = start_rebond(broker.bootstrap_servers, databases, tmp_path)
    try:
        yield running
    finally:
        stop_rebond(running)


def test_make_demo_replays_the_bethune_case_to_900_jobs_compensated(
    rebond: RunningRebond, databases: dict[str, str], tmp_path: Path
) -> None:
    started = time.monotonic()
    urls = {name: rebond.api({"site_registry": "registry"}.get(name, name)) for name in SERVICES}
    with Scraper({**urls, "web": rebond.base_url}, watched=BACKLOG) as scraper:
        demo = subprocess.run(
            [sys.executable, "deploy/local/demo.py", "--data-dir", str(tmp_path), "--exit"],
            cwd=ROOT,
            env=rebond.env,
            capture_output=True,
            text=True,
            timeout=420,
        )
    print(demo.stdout[-3000:])
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "using the make run of" in demo.stdout  # the running system, not a new one
    print(f"[demo] replay on Kafka + PostgreSQL: {time.monotonic() - started:.0f} s")

    cell = rebond.token("--role", "crisis_cell", "--territory", "ti-3205", "--sub", "check")
    (shock,) = [s for s in get(rebond, "detection", "/shocks", cell) if s["jobs_lost"] == 900]
    ledger = get(rebond, "detection", f"/shocks/{shock['shock_id']}/ledger", cell)
    assert ledger["jobs_lost"] == 900
    assert (
        ledger["total"]["created"],
        ledger["endogenous"]["created"],
        ledger["exogenous"]["created"],
    ) == (900, 450, 450)
    assert ledger["compensation_rate"] == 1.0
    assert ledger["split"] == {"endogenous": 0.5, "exogenous": 0.5}
    assert ledger["total"]["jobs_under_review"] == 0  # no project counted twice
    assert f"/cellule/?choc={shock['shock_id']}" in demo.stdout

    calls = get(rebond, "funding", "/calls", cell)
    (relance,) = [c for c in calls if c["id"] == "fr-relance-aiit-hdf-reviews"]
    rounds = [(r["selected"], r["per_territory"].get("ti-3205")) for r in relance["results"]]
    assert sorted(rounds) == [(25, 1), (50, 18), (200, 65)]
    funded = get(
        rebond,
        "detection",
        f"/projects?shock={shock['shock_id']}&stage=jobs_created&origin=endogenous&limit=500",
        cell,
    )
    assert len(funded["items"]) == 1 + 18 + 65  # each selection is an award of this replay

    run = load("run")
    access = run.kafka_access(rebond.env)
    prefix = rebond.env["KAFKA_TOPIC_PREFIX"]
    deadline = time.monotonic() + 60
    while (why := asyncio.run(run.unsettled(access, prefix, databases))) is not None:
        assert time.monotonic() < deadline, f"still in flight after 60 s: {why}"
        time.sleep(0.5)
    existing = asyncio.run(topic_names(rebond.env["KAFKA_BOOTSTRAP_SERVERS"]))
    dead: dict[str, list[Any]] = {}
    for topic in ALL_TOPICS:
        name = topic.physical_dlq(prefix)
        if name in existing:  # a dead-letter topic is created with its first message
            messages = asyncio.run(read_all(rebond.env["KAFKA_BOOTSTRAP_SERVERS"], name))
            if messages:
                dead[name] = messages
    assert dead == {}, f"dead-lettered: {dead}"
    the_metrics_moved_and_settled(scraper, urls, rebond.base_url)


#: What a scrape during the flow watches: the backlogs that must grow, then drain.
BACKLOG = ("rebond_outbox_pending_events", "rebond_consumer_lag_offsets")
#: The series every service exposes (its relay, its pools, its HTTP requests)...
EVERY_SERVICE = (
    "rebond_http_requests_total",
    "rebond_http_request_duration_seconds_bucket",
    "rebond_relay_leader",
    "rebond_relay_failing",
    "rebond_outbox_pending_events",
    "rebond_outbox_oldest_pending_age_seconds",
    "rebond_db_pool_connections",
    "rebond_db_pool_size",
)
#: ... and those of a service with consumers.
CONSUMING = (
    "rebond_events_consumed_total",
    "rebond_consumer_lag_offsets",
    "rebond_consumer_handler_retries_total",
    "rebond_consumer_dead_lettered_total",
    "rebond_consumer_seconds_since_poll",
    "rebond_consumer_waiting_for_dependency",
    "rebond_dead_letter_messages",
)


def the_metrics_moved_and_settled(scraper: Scraper, urls: dict[str, str], web: str) -> None:
    """Scraped during the demo and once it settled: every named series exists; events
    were published and consumed; the outbox backlog and the consumer lag grew during the
    flow and are back to 0; one relay leads per service; nothing was dead-lettered."""
    assert scraper.scrapes > 0 and not scraper.errors, scraper.errors[:5]
    final = {service: scrape(url) for service, url in urls.items()}
    for service, samples in final.items():
        expected = EVERY_SERVICE + (CONSUMING if topics_consumed_by(service) else ())
        missing = set(expected) - names(samples)
        assert not missing, f"{service} lacks {sorted(missing)}"
        before = scraper.first[service]
        published = total(samples, "rebond_events_published_total")
        assert published > total(before, "rebond_events_published_total"), service
        assert total(samples, "rebond_relay_leader") == 1, service  # one process each
        assert total(samples, "rebond_outbox_pending_events") == 0, service
        assert total(samples, "rebond_outbox_oldest_pending_age_seconds") == 0, service
        assert total(samples, "rebond_http_requests_total") > 0, service
        if topics_consumed_by(service):
            consumed = total(samples, "rebond_events_consumed_total", outcome="processed")
            assert consumed > total(before, "rebond_events_consumed_total"), service
            assert total(samples, "rebond_consumer_lag_offsets") == 0, service
            assert total(samples, "rebond_dead_letter_messages") == 0, service
            assert total(samples, "rebond_consumer_dead_lettered_total") == 0, service
    # During the flow the backlogs were there (the demo registers 165 sites and replays
    # hundreds of surveys): a scrape saw each kind above 0 somewhere.
    for name in BACKLOG:
        assert max(v for (_, n), v in scraper.peaks.items() if n == name) > 0, name
    assert httpx.get(f"{web}/connexion/", timeout=10).status_code == 200
    pages = scrape(web)
    assert total(pages, "rebond_http_requests_total", status="200") >= 1, pages


def get(rebond: RunningRebond, api: str, path: str, token: str) -> Any:
    name = {"site_registry": "registry"}.get(api, api)
    status, body = rebond.call("GET", rebond.api(name) + path, token)
    assert status == 200, body
    return body


async def topic_names(bootstrap: str) -> set[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()
