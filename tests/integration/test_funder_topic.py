"""The funder-facing topic, read as a regional funder's system would: a plain Kafka
client and the published AsyncAPI document, no project code in the reading side.

The services that produce the events run in-process (fixtures); everything that reads and
checks them below uses only aiokafka, jsonschema and `docs/asyncapi.json`.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from tests.support.dsl import ADEME_ECODESIGN, FundingStack, token
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

ASYNCAPI = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json").read_text("utf-8")
)
FUNDER_TOPIC = "rebond.funding.funder_feed.v1"


def validator_for(ce_type: str) -> Draft202012Validator:
    messages = ASYNCAPI["components"]["messages"]
    message = next(m for m in messages.values() if m.get("x-ce-type") == ce_type)
    registry = Registry().with_resource("urn:asyncapi", Resource.opaque(ASYNCAPI))
    schema = {**message["payload"], "$id": "urn:asyncapi#payload"}
    # Local refs (#/components/schemas/…) resolve against the whole document.
    resolved = json.loads(
        json.dumps(schema).replace('"#/components/', '"urn:asyncapi#/components/')
    )
    return Draft202012Validator(resolved, registry=registry)


async def read_to_end(bootstrap: str, topic: str) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list = []
        deadline = time.monotonic() + 30
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def test_funder_topic_carries_valid_payloads_of_consented_projects_only(
    funding_stack: FundingStack,
) -> None:
    st = funding_stack
    _, (shared,) = await st.surveyed_projects(consent=True)
    # A second firm, same campaign, that did not consent.
    visits = await st.visits("consultant-2", at_least=1)
    private_project = {
        "kind": "decarbonation_energy",
        "description": "Private heat pump project",
        "capex_eur": 900_000,
        "jobs_to_create": 5,
        "maturity": "ready",
        "known_to_public_actors": True,
        "funding_need_eur": 300_000,
        "consent_to_share": False,
    }
    await st.survey(visits[0]["id"], "consultant-2", [private_project], headcount=None)

    both = await eventually(st.projects, lambda p: len(p) == 2, what="both projects")
    private = next(p for p in both if p["id"] != shared["id"])
    for p in both:
        assert (
            await st.d.post(f"/projects/{p['id']}/qualify", json={}, headers=st.cell)
        ).status_code == 200
    await st.detection.relay.publish_pending()

    async def matched(project_id: str) -> bool:
        resp = await st.f.get(f"/projects/{project_id}/matches", headers=st.cell)
        return resp.status_code == 200 and bool(resp.json()["eligible"])

    for p in both:
        await eventually(lambda p=p: matched(p["id"]), what=f"{p['id']} matched")
    funder = token(st.funding.auth, "funder", "ademe", regions=["32"], org="ADEME")
    application = await st.f.post(
        "/applications",
        json={
            "project_id": shared["id"],
            "scheme_id": ADEME_ECODESIGN,
            "amount_requested_eur": 200_000,
        },
        headers=funder,
    )
    assert application.status_code == 201
    await st.funding.relay.publish_pending()

    topic = st.funding.settings.kafka_topic_prefix + FUNDER_TOPIC
    records = await read_to_end(st.funding.settings.kafka_bootstrap_servers, topic)
    types = [dict(r.headers)["ce_type"].decode() for r in records]
    assert "rebond.funding.match_proposed.v1" in types
    assert "rebond.funding.application_submitted.v1" in types
    for record, ce_type in zip(records, types, strict=True):
        payload = json.loads(record.value)
        errors = list(validator_for(ce_type).iter_errors(payload))
        assert not errors, f"{ce_type}: {errors[0].message}"
        assert record.key.decode() == payload["project_id"]
    project_ids = {json.loads(r.value)["project_id"] for r in records}
    assert shared["id"] in project_ids
    assert private["id"] not in project_ids
    for r in records:
        assert b"Private heat pump" not in r.value and b"consultant" not in r.value
    assert uuid.UUID(shared["id"])
