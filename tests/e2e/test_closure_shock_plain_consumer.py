"""A closure shock on Bridgestone Béthune, seen from outside: the registry runs as its own
process, and the event is read by a plain Kafka consumer with no project code.

This module deliberately imports nothing from `shared` or `services`: it is what a
third-party client (a regional funder's system, say) would write from the docs alone.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

pytestmark = pytest.mark.e2e

BRIDGESTONE = "36120038900019"
TOPIC = "rebond.site_registry.sites.v1"
CLOSURE_ANNOUNCED = "rebond.site_registry.closure_announced.v1"


async def read_until(bootstrap: str, topic: str, done, timeout: float = 60.0) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"third-party-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list = []
    deadline = time.monotonic() + timeout
    try:
        while not done(seen):
            assert time.monotonic() < deadline, f"only {len(seen)} messages in {timeout}s"
            for records in (await consumer.getmany(timeout_ms=200)).values():
                seen.extend(records)
        return seen
    finally:
        await consumer.stop()


async def test_closure_shock_is_one_event_readable_without_project_code(
    site_registry_process,
) -> None:
    svc = site_registry_process
    token = svc.token("--role", "crisis_cell", "--territory", "ti-3205")
    headers = {"Authorization": f"Bearer {token}", "X-Correlation-ID": "e2e-bridgestone"}
    shock = {
        "site_id": BRIDGESTONE,
        "announced_on": "2020-09-16",
        "jobs_lost": 900,
        "planned_closure_on": "2021-04-30",
        "note": "Annonce de la direction au CSE (note interne, jamais publiée)",
    }
    async with httpx.AsyncClient(base_url=svc.base_url, timeout=10) as http:
        created = await http.post("/closure-shocks", json=shock, headers=headers)
        assert created.status_code == 201, created.text
        again = await http.post("/closure-shocks", json=shock, headers=headers)
        assert again.status_code == 409

    topic = svc.topic_prefix + TOPIC

    def announced(records: list) -> list:
        return [r for r in records if dict(r.headers).get("ce_type") == CLOSURE_ANNOUNCED.encode()]

    # 165 demo sites registered, then the announcement: read until it is there.
    records = await read_until(svc.bootstrap_servers, topic, lambda rs: bool(announced(rs)))
    records += await read_until(svc.bootstrap_servers, topic, lambda rs: len(rs) >= 166, timeout=30)
    events = announced(records)
    ids = {dict(r.headers)["ce_id"] for r in events}
    assert len(ids) == 1, "exactly one closure-announced event"

    event = events[0]
    headers_ = {k: v.decode() for k, v in event.headers}
    payload = json.loads(event.value)
    assert event.key == BRIDGESTONE.encode()
    assert headers_["ce_subject"] == BRIDGESTONE
    assert headers_["ce_source"] == "site_registry"
    assert headers_["ce_correlationid"] == "e2e-bridgestone"
    assert payload["jobs_lost"] == 900
    assert payload["site_id"] == BRIDGESTONE
    assert payload["naf_code"] == "22.11Z"
    assert payload["territory_ids"] == ["ti-3205"]
    assert payload["announced_on"] == "2020-09-16"
    assert "note" not in payload and "CSE" not in event.value.decode()
    assert "declared_by" not in payload
