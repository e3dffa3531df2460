"""The campaigns service on the real broker and database, fed by the real site registry:
a closure shock launches one campaign; consultants work through their API."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import func, select

from services.campaigns.adapters.orm import CampaignRow, SurveyRow, VisitRow
from services.campaigns.bootstrap import Campaigns
from services.campaigns.bootstrap import bootstrap as campaigns_bootstrap
from services.campaigns.entrypoints.http import create_app as campaigns_app
from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.entrypoints.cli import demo_sites
from services.site_registry.entrypoints.http import create_app as registry_app
from services.site_registry.service_layer import batch_jobs
from shared.auth import mint_token
from shared.events.catalogue import SITES, SURVEYS
from tests.integration.conftest import TODAY
from tests.support.kafka import read_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

BRIDGESTONE = "36120038900019"
SHOCK = {"site_id": BRIDGESTONE, "announced_on": "2020-09-16", "jobs_lost": 900}


def bearer(auth, role: str, sub: str | None = None, territories=("ti-3205",)) -> dict[str, str]:
    token = mint_token(auth, subject=sub or f"test-{role}", roles=[role], territories=territories)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def apps(
    registry: SiteRegistry, campaigns: Campaigns
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    await batch_jobs.load_sites(registry.uow, demo_sites(), registry.refs)
    await registry.relay.publish_pending()
    r = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=registry_app(registry, run_workers=False)),
        base_url="http://registry",
    )
    c = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=campaigns_app(campaigns, run_workers=False)),
        base_url="http://campaigns",
    )
    async with r, c:
        yield r, c


async def launched(campaigns: Campaigns) -> list[CampaignRow]:
    async with campaigns.session_factory() as s:
        return list((await s.exec(select(CampaignRow))).all())


async def declare_bridgestone(registry: SiteRegistry, r: httpx.AsyncClient) -> None:
    resp = await r.post("/closure-shocks", json=SHOCK, headers=bearer(registry.auth, "crisis_cell"))
    assert resp.status_code == 201, resp.text
    await registry.relay.publish_pending()


async def the_campaign(campaigns: Campaigns, c: httpx.AsyncClient) -> dict:
    cell = bearer(campaigns.auth, "crisis_cell")

    async def probe() -> list[dict]:
        return (await c.get("/campaigns", headers=cell)).json()

    found = await eventually(
        probe, lambda cs: len(cs) == 1 and cs[0]["targets"] == 164, what="campaign of 164 targets"
    )
    return found[0]


async def test_closure_shock_launches_one_campaign_over_164_sites_once(
    registry: SiteRegistry, campaigns: Campaigns, apps
) -> None:
    r, c = apps
    await declare_bridgestone(registry, r)
    campaign = await the_campaign(campaigns, c)

    assert campaign["territory_id"] == "ti-3205"
    assert campaign["closing_site_id"] == BRIDGESTONE
    assert campaign["budget_days"] == 150.0
    assert campaign["planned"] + campaign["uncovered"] == 164
    assert campaign["days_planned"] <= 150.0
    plan = (
        await c.get(
            f"/campaigns/{campaign['id']}/plan", headers=bearer(campaigns.auth, "crisis_cell")
        )
    ).json()
    sites = [t["site_id"] for t in plan["targets"]]
    assert len(sites) == 164 == len(set(sites)) and BRIDGESTONE not in sites
    for t in plan["targets"]:
        assert (t["status"] == "planned") == (t["uncovered_reason"] is None)
        if t["status"] == "planned":
            assert t["consultant_id"] and t["scheduled_on"] >= "2026-11-23"
        assert t["reasons"], "every priority says why"
        assert t["outcome"] is None  # nobody visited yet
    placed = [t for t in plan["targets"] if t["lon"] is not None and t["lat"] is not None]
    assert len(placed) >= 150  # the demo's sites have coordinates (Sirene's, or the IREP's)

    # Site events of other partitions may have arrived after the shock and joined the plan
    # one by one; from here on, nothing should change it.
    (before,) = await launched(campaigns)

    # Replaying the shock: the same record again, and the whole topic to a new group.
    topic = SITES.physical(registry.settings.kafka_topic_prefix)
    messages = await read_all(registry.settings.kafka_bootstrap_servers, topic)
    shock = next(m for m in messages if m.headers["ce_type"].endswith("closure_announced.v1"))
    producer = campaigns.producer()
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            shock.value,
            key=shock.key,
            headers=[(k, v.encode()) for k, v in shock.headers.items()],
        )
    finally:
        await producer.stop()
    await eventually(
        lambda: _stat(campaigns, "duplicates"), lambda n: n >= 1, what="duplicate detected"
    )
    # A new consumer group (its own inbox) re-reads the whole topic: handlers themselves
    # must change nothing (the projection keeps newer versions; one campaign per shock).
    replayer = campaigns_bootstrap(campaigns.settings, now=lambda: TODAY)
    replayer.consumer.name = f"replay-{uuid.uuid4().hex[:6]}"
    task = asyncio.create_task(replayer.consumer.run())
    try:
        await eventually(
            lambda: _seen(replayer), lambda n: n >= len(messages) + 1, what="topic replayed"
        )
    finally:
        await replayer.consumer.stop()
        task.cancel()
        await replayer.aclose()
    assert replayer.consumer.stats.duplicates == 1  # the copy, in the new group's inbox
    (after,) = await launched(campaigns)
    assert after.id == before.id and after.plan_version == before.plan_version


async def _seen(svc: Campaigns) -> int:
    return svc.consumer.stats.processed + svc.consumer.stats.duplicates


async def _stat(svc: Campaigns, name: str) -> int:
    return int(getattr(svc.consumer.stats, name))


async def test_consultants_work_through_their_api(
    registry: SiteRegistry, campaigns: Campaigns, apps
) -> None:
    r, c = apps
    await declare_bridgestone(registry, r)
    campaign = await the_campaign(campaigns, c)
    auth = campaigns.auth
    me = bearer(auth, "consultant", "consultant-1")

    week = await c.get(
        "/me/visits", params={"from": "2026-11-23", "days": 7, "limit": 200}, headers=me
    )
    assert week.status_code == 200
    mine = week.json()["items"]
    assert mine and all(v["campaign_id"] == campaign["id"] for v in mine)
    async with campaigns.session_factory() as s:
        owners = {row.id: row.consultant_id for row in (await s.exec(select(VisitRow))).all()}
    assert {owners[uuid.UUID(v["id"])] for v in mine} == {"consultant-1"}

    paged: list[dict] = []
    cursor = None
    while True:
        params = {
            "from": "2026-11-23",
            "days": 7,
            "limit": 3,
            **({"cursor": cursor} if cursor else {}),
        }
        page = (await c.get("/me/visits", params=params, headers=me)).json()
        paged += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert [v["id"] for v in paged] == [v["id"] for v in mine]

    etag = week.headers["etag"]
    again = await c.get(
        "/me/visits",
        params={"from": "2026-11-23", "days": 7, "limit": 200},
        headers={**me, "If-None-Match": etag},
    )
    assert again.status_code == 304 and again.content == b""

    big = await c.get(
        "/me/visits",
        params={"from": "2026-11-23", "days": 31, "limit": 200},
        headers={**me, "Accept-Encoding": "gzip"},
    )
    assert big.headers.get("content-encoding") == "gzip"

    visit = mine[0]
    other = bearer(auth, "consultant", "consultant-2")
    refused = await c.post(
        f"/visits/{visit['id']}/outcome", json={"outcome": "reached"}, headers=other
    )
    assert refused.status_code == 409 and refused.json()["code"] == "visit_reassigned"

    bad = await c.post(f"/visits/{visit['id']}/outcome", json={"outcome": "declined"}, headers=me)
    assert bad.status_code == 422 and "reason" in bad.json()["detail"]

    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"outcome": "declined", "reason": "no time this year", "visited_on": "2026-11-23"}
    first = await c.post(f"/visits/{visit['id']}/outcome", json=body, headers={**me, **key})
    second = await c.post(f"/visits/{visit['id']}/outcome", json=body, headers={**me, **key})
    assert first.status_code == second.status_code == 200
    assert second.headers.get("idempotent-replayed") == "true"
    assert first.json() == second.json()
    reused = await c.post(
        f"/visits/{visit['id']}/outcome", json={**body, "reason": "other"}, headers={**me, **key}
    )
    assert reused.status_code == 422
    # The crisis cell's map colours each target by its visit's outcome.
    cell = bearer(auth, "crisis_cell")
    plan = (await c.get(f"/campaigns/{campaign['id']}/plan", headers=cell)).json()
    target = next(t for t in plan["targets"] if t["visit_id"] == visit["id"])
    assert (target["status"], target["outcome"]) == ("completed", "declined")

    survey = {
        "questionnaire_version": "2026-1",
        "headcount": 31,
        "contact_name": "Jeanne Martin",
        "contact_phone": "+33 6 12 34 56 78",
        "projects": [
            {
                "kind": "decarbonation_energy",
                "description": "Heat recovery on the kilns",
                "capex_eur": 800000,
                "jobs_to_create": 4,
                "maturity": "study",
                "known_to_public_actors": False,
                "obstacles": ["financing"],
                "funding_need_eur": 250000,
                "consent_to_share": True,
            },
            {
                "kind": "capacity_extension",
                "description": "Second press line",
                "jobs_to_create": 12,
                "maturity": "ready",
                "known_to_public_actors": True,
                "consent_to_share": False,
            },
        ],
        "red_flags": [{"kind": "relocation", "horizon_months": 24}],
    }
    target = mine[1]
    skey = {"Idempotency-Key": str(uuid.uuid4())}
    s1 = await c.post(f"/visits/{target['id']}/survey", json=survey, headers={**me, **skey})
    s2 = await c.post(f"/visits/{target['id']}/survey", json=survey, headers={**me, **skey})
    assert s1.status_code == s2.status_code == 201, s1.text
    assert s1.json() == s2.json() and s1.json()["revision"] == 1
    wrong = await c.post(
        f"/visits/{target['id']}/survey",
        json={**survey, "questionnaire_version": "1999"},
        headers=me,
    )
    assert wrong.status_code == 422 and "questionnaire_version" in wrong.json()["detail"]
    async with campaigns.session_factory() as s:
        assert (await s.exec(select(func.count()).select_from(SurveyRow))).one() == 1

    progress = (
        await c.get(f"/campaigns/{campaign['id']}/progress", headers=bearer(auth, "crisis_cell"))
    ).json()
    assert progress["visited"] == 2 and progress["reached"] == 1
    assert progress["projects"] == 2 and progress["projects_hidden"] == 1
    assert progress["hidden_share"] == 0.5 and progress["red_flags"] == 1
    assert progress["days_used"] == 2 * campaign["cost_per_visit_days"]
    flags = (
        await c.get(f"/campaigns/{campaign['id']}/red-flags", headers=bearer(auth, "crisis_cell"))
    ).json()
    assert [(f["site_id"], f["kind"], f["horizon_months"]) for f in flags] == [
        (target["site_id"], "relocation", 24)
    ]
    assert flags[0]["visit_id"] == target["id"] and flags[0]["commune_insee"]
    assert "Jeanne" not in json.dumps(flags)  # the firm's warning, not who gave it
    csv_text = (
        await c.get(
            f"/campaigns/{campaign['id']}/progress.csv", headers=bearer(auth, "crisis_cell")
        )
    ).text
    assert csv_text.splitlines()[0].startswith("scope,key,targets")
    assert "consultant,consultant-1" in csv_text

    await campaigns.relay.publish_pending()
    surveys_topic = SURVEYS.physical(campaigns.settings.kafka_topic_prefix)
    published = await read_all(campaigns.settings.kafka_bootstrap_servers, surveys_topic)
    submitted = [m for m in published if m.headers["ce_type"].endswith("survey_submitted.v1")]
    assert len(submitted) == 1
    raw = (submitted[0].value or b"").decode()
    payload = json.loads(raw)
    assert len(payload["projects"]) == 2
    assert {p["consent_to_share"] for p in payload["projects"]} == {True, False}
    for personal in ("Jeanne", "Martin", "+33", "contact", "consultant-1"):
        assert personal not in raw
    flags = [m for m in published if m.headers["ce_type"].endswith("red_flag_raised.v1")]
    assert len(flags) == 1


async def test_offline_batch_with_a_reassigned_visit(
    registry: SiteRegistry, campaigns: Campaigns, apps
) -> None:
    r, c = apps
    await declare_bridgestone(registry, r)
    campaign = await the_campaign(campaigns, c)
    auth = campaigns.auth
    me = bearer(auth, "consultant", "consultant-1")
    mine = (
        await c.get(
            "/me/visits", params={"from": "2026-11-23", "days": 31, "limit": 200}, headers=me
        )
    ).json()["items"]
    assert len(mine) >= 20
    batch = mine[:20]

    # While consultant-1 was offline, the crisis cell moved one of their visits away.
    moved = batch[7]
    async with campaigns.uow() as uow:
        domain = await uow.campaigns.get(uuid.UUID(campaign["id"]))
        assert domain is not None
        domain.visits[moved["site_id"]].consultant_id = "consultant-2"
        domain.visits[moved["site_id"]].version += 1
        await uow.commit()

    recorded = (TODAY - timedelta(hours=2)).isoformat()
    items = [
        {
            "client_id": str(uuid.uuid4()),
            "type": "outcome",
            "visit_id": v["id"],
            "recorded_at": recorded,
            "outcome": {
                "outcome": "unreachable",
                "reason": "gate closed",
                "visited_on": date(2026, 11, 23).isoformat(),
            },
        }
        for v in batch
    ]
    resp = await c.post("/sync", json={"items": items}, headers=me)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["accepted"], out["conflicts"]) == (19, 1)
    conflict = next(x for x in out["results"] if x["status"] == "conflict")
    assert conflict["client_id"] == items[7]["client_id"] and conflict["http_status"] == 409

    retry = (await c.post("/sync", json={"items": items}, headers=me)).json()
    assert (retry["accepted"], retry["duplicates"], retry["conflicts"]) == (0, 19, 1)


async def test_my_visits_bodies_encodings_and_a_dead_read_connection(
    registry: SiteRegistry, campaigns: Campaigns, apps
) -> None:
    """The agenda's body is the same JSON gzipped or not, under one ETag; a small one is
    not gzipped; and a pooled read connection the server dropped costs no error (the read
    pool has no ping on checkout: the read is run again on a fresh connection)."""
    r, c = apps
    await declare_bridgestone(registry, r)
    await the_campaign(campaigns, c)
    me = bearer(campaigns.auth, "consultant", "consultant-1")
    week = {"from": "2026-11-23", "days": 7, "limit": 200}
    plain = await c.get("/me/visits", params=week, headers={**me, "Accept-Encoding": "identity"})
    zipped = await c.get("/me/visits", params=week, headers={**me, "Accept-Encoding": "gzip"})
    assert plain.status_code == zipped.status_code == 200
    assert len(plain.content) >= 1400, "a week of visits is above the gzip threshold"
    assert plain.headers.get("content-encoding") is None
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.content == plain.content  # httpx decodes: the same bytes
    assert zipped.headers["etag"] == plain.headers["etag"]
    assert json.loads(plain.content) == plain.json() and plain.json()["items"]

    one = await c.get(
        "/me/visits",
        params={"from": plain.json()["items"][0]["day"], "days": 1, "limit": 1},
        headers={**me, "Accept-Encoding": "gzip"},
    )
    assert one.status_code == 200 and len(one.content) < 1400
    assert one.headers.get("content-encoding") is None

    if campaigns.engine.dialect.name == "postgresql":
        # Every pooled read connection dropped by the server, as by a restart.
        async with campaigns.session_factory() as s:
            await s.exec(
                text(  # type: ignore[call-overload]
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        again = await c.get("/me/visits", params=week, headers=me)
        assert again.status_code == 200 and again.content == plain.content
