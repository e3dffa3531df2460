"""The funder feed over HTTP, read as a regional council's system would: a plain HTTP
client on a real loopback socket, the server-sent events parsed by hand, the CloudEvents'
`data` checked against the published `docs/asyncapi.json`, and the Kafka topic read with
a plain Kafka client to compare — no project code on the reading side.

The services run in-process (fixtures); funding is served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from services.funding.entrypoints.http import create_app as funding_app
from tests.integration.test_funder_topic import FUNDER_TOPIC, validator_for
from tests.support.dsl import ADEME_ECODESIGN, FundingStack, Headers, token
from tests.support.kafka import read_all
from tests.support.loopback import serve
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

OTHER_TERRITORY = "ti-8401"  # Auvergne-Rhône-Alpes (region 84)
CE_ATTRIBUTES = {"specversion", "id", "source", "type", "time", "subject", "datacontenttype"}


@dataclass(frozen=True)
class Sse:
    """One server-sent event, or a comment (`event` None, the comment in `data`)."""

    id: str | None
    event: str | None
    data: str
    comment: bool = False

    @property
    def cloud_event(self) -> dict[str, Any]:
        return dict(json.loads(self.data))


async def sse(resp: httpx.Response) -> AsyncIterator[Sse]:
    """The events of a `text/event-stream` body, per the WHATWG parsing rules (the parts
    used here: `id`, `event`, `data`, comments, blank-line dispatch)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    async for line in resp.aiter_lines():
        if line == "":
            if data:
                yield Sse(fields.get("id"), fields.get("event"), "\n".join(data))
            fields, data = {}, []
            continue
        if line.startswith(":"):
            yield Sse(None, None, line[1:].strip(), comment=True)
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        else:
            fields[name] = value


async def read_feed(
    client: httpx.AsyncClient, headers: Headers, *, count: int | None = None, **params: str
) -> list[Sse]:
    """The stream's events (comments left out): all of a bounded stream, or the first
    `count` of a following one, then the connection is closed (a client going away)."""
    out: list[Sse] = []
    async with asyncio.timeout(30):
        async with client.stream("GET", "/funder/feed", params=params, headers=headers) as resp:
            assert resp.status_code == 200, await resp.aread()
            assert resp.headers["content-type"].startswith("text/event-stream")
            async for event in sse(resp):
                if not event.comment:
                    out.append(event)
                if count is not None and len(out) >= count:
                    break
    return out


async def declare(st: FundingStack, admin: Headers, territory: str, *, consent: bool) -> str:
    body = {
        "territory_id": territory,
        "firm_name": f"Firm {uuid.uuid4().hex[:6]}",
        "kind": "decarbonation_energy",
        "description": "Heat recovery on a furnace line",
        "jobs_planned": 12,
        "capex_eur": 1_500_000,
        "funding_need_eur": 500_000,
        "maturity": "ready",
        "consent_to_share": consent,
    }
    resp = await st.d.post("/projects/exogenous", json=body, headers=admin)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


@contextlib.asynccontextmanager
async def served(st: FundingStack) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client of the funding API served on a loopback port."""
    async with (
        serve(funding_app(st.funding, run_workers=False)) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        yield client


@dataclass(frozen=True)
class World:
    shared: str  # consented, region 32
    private: str  # not consented, region 32
    elsewhere: str  # consented, region 84
    application_id: str
    funder: Headers  # ADEME, region 32
    admin: Headers


async def build_world(st: FundingStack) -> World:
    admin = token(st.detection.auth, "admin", "ops")
    _, (shared,) = await st.surveyed_projects(consent=True)
    private = await declare(st, admin, st.territory, consent=False)
    elsewhere = await declare(st, admin, OTHER_TERRITORY, consent=True)
    for project_id in (shared["id"], private, elsewhere):
        resp = await st.d.post(f"/projects/{project_id}/qualify", json={}, headers=admin)
        assert resp.status_code == 200, resp.text
    await st.drained()

    async def matched(project_id: str) -> bool:
        resp = await st.f.get(f"/projects/{project_id}/matches", headers=admin)
        return resp.status_code == 200 and bool(resp.json()["eligible"])

    for project_id in (shared["id"], private, elsewhere):
        await eventually(functools.partial(matched, project_id), what=f"{project_id} matched")
    funder = token(st.funding.auth, "funder", "ademe-hdf", regions=["32"], org="ADEME")
    application = await st.f.post(
        "/applications",
        json={
            "project_id": shared["id"],
            "scheme_id": ADEME_ECODESIGN,
            "amount_requested_eur": 200_000,
        },
        headers=funder,
    )
    assert application.status_code == 201, application.text
    await st.drained()
    return World(shared["id"], private, elsewhere, application.json()["id"], funder, admin)


def check_cloud_event(event: Sse) -> dict[str, Any]:
    """A structured-mode CloudEvent whose `data` is valid for its type; its attributes."""
    ce = event.cloud_event
    assert set(ce) >= CE_ATTRIBUTES, ce
    assert ce["specversion"] == "1.0"
    assert ce["datacontenttype"] == "application/json"
    assert ce["type"] == event.event
    assert str(ce["feedseq"]) == event.id
    assert ce["subject"] == ce["data"]["project_id"]
    uuid.UUID(ce["id"])
    errors = list(validator_for(ce["type"]).iter_errors(ce["data"]))
    assert not errors, f"{ce['type']}: {errors[0].message}"
    return ce


async def test_a_funder_reads_its_regions_consented_events_and_resumes_without_loss(
    funding_stack: FundingStack,
) -> None:
    st = funding_stack
    w = await build_world(st)
    async with served(st) as client:
        backlog = await read_feed(client, w.funder, follow="false")
        everything = await read_feed(client, w.admin, follow="false")

        # What the funder reads: valid CloudEvents of its region's consented project.
        ces = [check_cloud_event(e) for e in backlog]
        assert {ce["data"]["project_id"] for ce in ces} == {w.shared}
        types = [ce["type"] for ce in ces]
        assert "rebond.funding.match_proposed.v1" in types
        assert types[-1] == "rebond.funding.application_submitted.v1"
        seqs = [ce["feedseq"] for ce in ces]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        # The other region's project is on the feed (the admin reads it), not the
        # funder's; the unconsented project is on nobody's.
        all_projects = {e.cloud_event["data"]["project_id"] for e in everything}
        assert all_projects == {w.shared, w.elsewhere}
        assert w.private not in all_projects
        for e in backlog:
            assert b"Heat recovery" not in e.data.encode()

        # The same events as the Kafka topic, under the same ids.
        topic = st.funding.settings.kafka_topic_prefix + FUNDER_TOPIC
        records = await read_all(st.funding.settings.kafka_bootstrap_servers, topic)
        on_topic = {m.headers["ce_id"] for m in records}
        assert {e.cloud_event["id"] for e in everything} == on_topic
        mine = {m.headers["ce_id"] for m in records if m.key == w.shared.encode()}
        assert {ce["id"] for ce in ces} == mine

        # A client that read part of the stream, went away, and came back with the
        # last id it saw: the rest, nothing lost, nothing twice.
        half = max(1, len(backlog) // 2)
        first = await read_feed(client, w.funder, count=half)
        assert [e.id for e in first] == [e.id for e in backlog[:half]]
        rest = await read_feed(
            client, {**w.funder, "Last-Event-ID": str(first[-1].id)}, follow="false"
        )
        assert [e.id for e in first + rest] == [e.id for e in backlog]
        # `after` for clients that cannot set headers; the header wins over it.
        by_query = await read_feed(client, w.funder, after=str(first[-1].id), follow="false")
        assert [e.id for e in by_query] == [e.id for e in rest]
        both = await read_feed(
            client,
            {**w.funder, "Last-Event-ID": str(first[-1].id)},
            after="0",
            follow="false",
        )
        assert [e.id for e in both] == [e.id for e in rest]

        # The page endpoint: the same events, as a CloudEvents JSON batch.
        page = await client.get(
            "/funder/feed/events", params={"after": 0, "limit": half}, headers=w.funder
        )
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("application/cloudevents-batch+json")
        following = await client.get(
            "/funder/feed/events",
            params={"after": page.json()[-1]["feedseq"], "limit": 1000},
            headers=w.funder,
        )
        batch = page.json() + following.json()
        assert batch == [e.cloud_event for e in backlog]

        # Another region's funder reads nothing of region 32.
        aura = token(st.funding.auth, "funder", "aura", regions=["84"], org="ADEME")
        theirs = await read_feed(client, aura, follow="false")
        assert {e.cloud_event["data"]["project_id"] for e in theirs} == {w.elsewhere}
        # A token without the funder's role is refused.
        refused = await client.get("/funder/feed", headers=st.cell)
        assert refused.status_code == 403


async def test_a_following_stream_delivers_new_events_as_they_commit(
    funding_stack: FundingStack,
) -> None:
    st = funding_stack
    w = await build_world(st)
    # Short heartbeats, so that the test sees one; the stream follows meanwhile.
    st.funding.feed_stream = replace(st.funding.feed_stream, heartbeat_s=0.2)
    async with served(st) as client:
        backlog = await read_feed(client, w.funder, follow="false")
        live: list[Sse] = []
        comments = 0

        async def award() -> None:
            resp = await st.f.post(
                f"/applications/{w.application_id}/award",
                json={"amount_eur": 150_000, "decided_on": "2023-06-15"},
                headers=w.funder,
            )
            assert resp.status_code == 200, resp.text

        async with asyncio.timeout(30):
            async with client.stream(
                "GET",
                "/funder/feed",
                headers={**w.funder, "Last-Event-ID": str(backlog[-1].id)},
            ) as resp:
                assert resp.status_code == 200
                async for event in sse(resp):
                    if event.comment:
                        comments += 1
                        if comments == 1:  # idle and kept alive: now the decision
                            await award()
                        continue
                    live.append(event)
                    break
        (granted,) = live
        ce = check_cloud_event(granted)
        assert ce["type"] == "rebond.funding.award_granted.v1"
        assert ce["data"]["application_id"] == w.application_id
        assert int(granted.id or 0) > int(backlog[-1].id or 0)
        assert comments >= 1


@dataclass
class Receiver:
    """A funder's webhook endpoint: what it was sent, and what it answers (the statuses
    in `answers` first, then 200)."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            self.received.append((dict(request.headers), await request.body()))
            return Response(status_code=self.answers.pop(0) if self.answers else 200)

        return app

    def acknowledged_ids(self) -> list[str]:
        """Distinct webhook-ids, in the order they were first sent."""
        return list(dict.fromkeys(h["webhook-id"] for h, _ in self.received))


def verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    """A receiver's check, per Standard Webhooks, with the standard library only."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    signatures = [s.partition(",")[2] for s in headers["webhook-signature"].split()]
    assert expected in signatures, headers
    assert abs(time.time() - int(headers["webhook-timestamp"])) < 300


async def test_webhooks_get_their_scope_signed_and_retried_until_acknowledged(
    funding_stack: FundingStack,
) -> None:
    st = funding_stack
    # Retries at once in the test (5 s, doubling, by default).
    st.funding.webhooks.settings = replace(st.funding.webhooks.settings, retry_base_s=0.05)
    ademe, aura = Receiver(answers=[500]), Receiver()
    funder = token(st.funding.auth, "funder", "ademe-hdf", regions=["32"], org="ADEME")
    other = token(st.funding.auth, "funder", "aura", regions=["84"], org="ADEME")
    async with serve(ademe.app()) as ademe_url, serve(aura.app()) as aura_url:
        created = {}
        for who, url in ((funder, ademe_url), (other, aura_url)):
            resp = await st.f.post("/funder/webhooks", json={"url": f"{url}/hook"}, headers=who)
            assert resp.status_code == 201, resp.text
            created[url] = resp.json()
            assert created[url]["secret"].startswith("whsec_")
        refused = await st.f.post(
            "/funder/webhooks", json={"url": "ftp://funder.example/x"}, headers=funder
        )
        assert refused.status_code == 422

        w = await build_world(st)

        async def feed_ids(who: Headers) -> list[str]:
            resp = await st.f.get("/funder/feed/events", params={"limit": 1000}, headers=who)
            return [ce["id"] for ce in resp.json()]

        mine, theirs = await feed_ids(funder), await feed_ids(other)
        assert mine and theirs
        await eventually(
            lambda: asyncio.sleep(0, ademe.acknowledged_ids()),
            lambda ids: ids == mine and not ademe.answers,
            what="every event of region 32 delivered",
        )
        await eventually(
            lambda: asyncio.sleep(0, aura.acknowledged_ids()),
            lambda ids: ids == theirs,
            what="every event of region 84 delivered",
        )

        # The first delivery was refused (500): the same event came again, same id.
        first_id = ademe.received[0][0]["webhook-id"]
        assert [h["webhook-id"] for h, _ in ademe.received].count(first_id) == 2
        for receiver, url in ((ademe, ademe_url), (aura, aura_url)):
            for headers, body in receiver.received:
                verify(created[url]["secret"], headers, body)
                assert headers["content-type"].startswith("application/cloudevents+json")
                ce = json.loads(body)
                assert ce["id"] == headers["webhook-id"]
                errors = list(validator_for(ce["type"]).iter_errors(ce["data"]))
                assert not errors, errors[0].message
        assert {json.loads(b)["data"]["project_id"] for _, b in ademe.received} == {w.shared}
        assert {json.loads(b)["data"]["project_id"] for _, b in aura.received} == {w.elsewhere}

        # The subscription says where it is; deleted, it is gone (and only its owner's).
        (listed,) = (await st.f.get("/funder/webhooks", headers=funder)).json()
        assert listed["id"] == created[ademe_url]["id"] and "secret" not in listed
        assert listed["attempts"] == 0 and listed["last_error"] is None
        hook_id = listed["id"]
        assert (await st.f.delete(f"/funder/webhooks/{hook_id}", headers=other)).status_code == 404
        assert (await st.f.delete(f"/funder/webhooks/{hook_id}", headers=funder)).status_code == 200
        assert (await st.f.get("/funder/webhooks", headers=funder)).json() == []
