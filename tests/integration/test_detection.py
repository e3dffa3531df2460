"""Project detection and the job-compensation ledger, through the real services: the
registry's shock, the campaigns' surveys, detection's projects, on real Kafka and
PostgreSQL. Funders' decisions are published as the funding service will publish them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest

from shared.events.catalogue import FUNDER_FEED
from shared.events.envelope import Envelope
from shared.events.funding import AwardGranted
from tests.support.dsl import TODAY, Ledger, Project, Stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def lead(kind: str, jobs: int, *, known: bool = False, consent: bool = True) -> dict:
    return {
        "lead_id": str(uuid.uuid4()),
        "kind": kind,
        "description": f"{kind} project",
        "capex_eur": 100_000 * jobs,
        "jobs_to_create": jobs,
        "maturity": "ready",
        "known_to_public_actors": known,
        "obstacles": ["financing"],
        "consent_to_share": consent,
    }


async def test_surveys_become_projects_once_and_the_ledger_follows(stack: Stack) -> None:
    shock_id = await stack.shock()
    visits = await stack.visits("consultant-1")
    first = [lead("capacity_extension", 12), lead("decarbonation_energy", 3, known=True)]
    second = [lead("new_line", 20), lead("rnd_innovation", 5)]
    await stack.survey(visits[0]["id"], "consultant-1", first)
    await stack.survey(visits[1]["id"], "consultant-1", second)

    projects = await eventually(stack.projects, lambda p: len(p) == 4, what="4 projects")
    assert {p["origin"] for p in projects} == {"endogenous"}
    assert {p["site_id"] for p in projects} == {visits[0]["site_id"], visits[1]["site_id"]}
    assert sum(p["hidden"] for p in projects) == 3
    assert all(p["priority_reasons"] for p in projects)

    # The same survey resubmitted, with a corrected figure: no duplicate, one update.
    first[0]["jobs_to_create"] = 15
    again = await stack.survey(visits[0]["id"], "consultant-1", first)
    assert again["revision"] == 2

    def updated(ps: list[Project]) -> bool:
        return len(ps) == 4 and any(p["jobs_planned"] == 15 for p in ps)

    projects = await eventually(stack.projects, updated, what="merged resubmission")
    extension = next(p for p in projects if p["jobs_planned"] == 15)
    timeline = (
        await stack.d.get(f"/projects/{extension['id']}/timeline", headers=stack.cell)
    ).json()
    reports = [t for t in timeline if t["kind"] == "report"]
    assert [r["reference"].split()[-1] for r in reports] == ["1", "2"]  # survey revisions
    assert [t["event_type"].split(".")[-2] for t in timeline if t["kind"] == "event"] == [
        "project_detected",
        "project_updated",
    ]

    # An exogenous project, then jobs created: the ledger moves.
    blackstar = await stack.post(
        "/projects/exogenous",
        {
            "territory_id": "ti-3205",
            "shock_id": shock_id,
            "firm_name": "Blackstar",
            "kind": "new_site",
            "description": "Industrial tyre retreading plant looking for a site",
            "jobs_planned": 100,
            "land_needs_ha": 4.0,
            "consent_to_share": True,
        },
    )
    assert blackstar["origin"] == "exogenous"

    def exogenous_detected(ledger: Ledger) -> bool:
        return ledger["exogenous"]["detected"] == 100

    ledger = await eventually(
        lambda: stack.ledger(shock_id), exogenous_detected, what="exogenous in the ledger"
    )
    assert ledger["jobs_lost"] == 900
    assert ledger["endogenous"]["detected"] == 15 + 3 + 20 + 5
    assert ledger["total"]["created"] == 0

    bad = await stack.d.post(
        f"/projects/{blackstar['id']}/jobs",
        json={"jobs_created_total": 10, "created_on": "2026-11-01"},
        headers=stack.cell,
    )
    assert bad.status_code == 409 and "qualif" in bad.json()["detail"]
    await stack.post(f"/projects/{blackstar['id']}/qualify", {})
    await stack.post(f"/projects/{blackstar['id']}/stage", {"stage": "launched"})
    await stack.post(
        f"/projects/{blackstar['id']}/jobs",
        {"jobs_created_total": 40, "created_on": "2026-11-01"},
    )
    ledger = await eventually(
        lambda: stack.ledger(shock_id),
        lambda led: led["exogenous"]["created"] == 40,
        what="created jobs in the ledger",
    )
    assert ledger["total"]["created"] == 40
    assert ledger["compensation_rate"] == round(40 / 900, 4)


async def award(stack: Stack, project_id: str, amount: int) -> None:
    """What the funding service will publish: an award on the decisions topic."""
    event = AwardGranted(
        project_id=uuid.UUID(project_id),
        scheme_id="france-relance-fonds-acceleration",
        funder="Région Hauts-de-France",
        occurred_at=TODAY,
        application_id=uuid.uuid4(),
        amount_eur=amount,
        decided_on=date(2026, 11, 20),
    )
    envelope = Envelope.new(event, source="funding")
    producer = stack.detection.producer()
    await producer.start()
    try:
        await producer.send_and_wait(
            FUNDER_FEED.physical(stack.detection.settings.kafka_topic_prefix),
            envelope.value(),
            key=envelope.subject.encode(),
            headers=envelope.headers(),
        )
    finally:
        await producer.stop()


async def test_bethune_reference_case_is_fully_compensated_half_and_half(stack: Stack) -> None:
    """900 jobs lost at Bridgestone; endogenous projects of local firms create 450 jobs,
    exogenous projects 450 (Blackstar among them): 100 % compensated, 50/50 — and the
    same figures after the ledger is dropped and rebuilt from the topics."""
    shock_id = await stack.shock(900)
    visits = await stack.visits("consultant-1") + await stack.visits("consultant-2")
    endogenous = [(45, "capacity_extension"), (45, "new_line")] * 5  # 10 projects, 450 jobs
    for n in range(5):
        consultant = "consultant-1" if n < 3 else "consultant-2"
        visit = visits[n] if n < 3 else (await stack.visits("consultant-2"))[n - 3]
        pair = endogenous[2 * n : 2 * n + 2]
        await stack.survey(visit["id"], consultant, [lead(kind, jobs) for jobs, kind in pair])
    exogenous = [("Blackstar", 300, "new_site"), ("Nordic Composites", 150, "site_takeover")]
    for name, jobs, kind in exogenous:
        await stack.post(
            "/projects/exogenous",
            {
                "territory_id": "ti-3205",
                "shock_id": shock_id,
                "firm_name": name,
                "kind": kind,
                "description": f"{name}: an outside investor settling in the territory",
                "jobs_planned": jobs,
                "consent_to_share": True,
            },
        )
    projects = await eventually(stack.projects, lambda p: len(p) == 12, what="12 projects")
    assert sum(p["jobs_planned"] for p in projects if p["origin"] == "endogenous") == 450
    assert sum(p["jobs_planned"] for p in projects if p["origin"] == "exogenous") == 450

    for p in projects:
        await stack.post(f"/projects/{p['id']}/qualify", {})
        await award(stack, p["id"], 100_000)

    async def all_funded() -> list[Project]:
        return await stack.projects(stage="funded")

    await eventually(all_funded, lambda ps: len(ps) == 12, what="awards move projects to funded")
    for p in projects:
        await stack.post(f"/projects/{p['id']}/stage", {"stage": "launched"})
        await stack.post(
            f"/projects/{p['id']}/jobs",
            {"jobs_created_total": p["jobs_planned"], "created_on": "2025-06-01", "complete": True},
        )

    def compensated(led: Ledger) -> bool:
        return led["total"]["created"] == 900

    ledger = await eventually(lambda: stack.ledger(shock_id), compensated, what="ledger at 900")
    assert ledger["jobs_lost"] == 900
    assert ledger["compensation_rate"] == 1.0
    assert ledger["split"] == {"endogenous": 0.5, "exogenous": 0.5}
    assert ledger["endogenous"]["created"] == ledger["exogenous"]["created"] == 450
    assert ledger["total"]["funded"] == 900
    assert ledger["series"][-1]["total"]["created"] == 900
    csv_text = (await stack.d.get(f"/shocks/{shock_id}/ledger.csv", headers=stack.cell)).text
    assert csv_text.splitlines()[0].startswith("month,")

    await stack.detection.relay.publish_pending()
    for workers in (0, 2):  # decoded in this process, then by two spawned processes
        report = await stack.detection.rebuild_ledger(workers=workers)
        assert report.events >= 12 * 6  # detected, qualified, funded, launched, jobs (+ …)
        assert report.malformed == 0
        rebuilt = await stack.ledger(shock_id)
        assert rebuilt == ledger, f"rebuilt with {workers} workers"


FAURECIA_A, FAURECIA_B = "07150239700020", "07150239700061"  # one firm, two real plants


async def resend_with_a_new_id(stack: Stack, topic: str, site_id: str) -> None:
    """A producer bug or a hand re-send: the same survey revision under a new ce_id."""
    from aiokafka import AIOKafkaProducer

    from tests.support.kafka import read_all

    bootstrap = stack.detection.settings.kafka_bootstrap_servers
    original = next(
        m
        for m in await read_all(bootstrap, topic)
        if m.key == site_id.encode() and m.headers["ce_type"].endswith("survey_submitted.v1")
    )
    headers = {**original.headers, "ce_id": str(uuid.uuid4())}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            original.value,
            key=original.key,
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
    finally:
        await producer.stop()


async def test_lookalikes_are_flagged_then_merged_or_dismissed(stack: Stack) -> None:
    """Two plants of one firm report a new line each: two projects, the second flagged,
    both counted, 14 jobs under review. The crisis cell merges them: counted once. An
    exogenous project declared twice: flagged, then dismissed. A re-sent survey event
    with a new id changes nothing, timeline included."""
    from shared.events.catalogue import SURVEYS

    shock_id = await stack.shock()
    campaign = await eventually(
        lambda: stack.c.get("/campaigns", headers=stack.cell),
        lambda r: r.status_code == 200 and len(r.json()) == 1,
        what="the campaign",
    )
    plan = (
        await stack.c.get(f"/campaigns/{campaign.json()[0]['id']}/plan", headers=stack.cell)
    ).json()
    visit = {t["site_id"]: t for t in plan["targets"] if t["site_id"] in (FAURECIA_A, FAURECIA_B)}
    line_a, line_b = lead("new_line", 20), lead("new_line", 14)
    # One after the other: the two surveys are keyed by visit, so on two partitions their
    # order would be the broker's; the second report is the one flagged.
    for count, (site, leads) in enumerate(((FAURECIA_A, [line_a]), (FAURECIA_B, [line_b])), 1):
        await stack.survey(visit[site]["visit_id"], visit[site]["consultant_id"], leads)
        await eventually(stack.projects, lambda p, n=count: len(p) == n, what=f"{count} projects")

    projects = await stack.projects()
    a = next(p for p in projects if p["site_id"] == FAURECIA_A)
    b = next(p for p in projects if p["site_id"] == FAURECIA_B)
    assert a["possible_duplicate_of"] is None
    assert b["possible_duplicate_of"] == a["id"]
    assert "another site" in b["duplicate_reason"] and "071502397" in b["duplicate_reason"]
    assert (a["jobs_planned"], b["jobs_planned"]) == (20, 14)  # nothing merged by the code
    flagged = await stack.projects(under_review="true")
    assert [p["id"] for p in flagged] == [b["id"]]
    ledger = await eventually(
        lambda: stack.ledger(shock_id),
        lambda led: led["total"]["detected"] == 34,
        what="both counted in the ledger",
    )
    assert ledger["total"]["jobs_under_review"] == 14
    assert ledger["total"]["projects_under_review"] == 1

    # The same survey revision re-sent under a new event id: one fact, applied once.
    timeline_of_b = f"/projects/{b['id']}/timeline"
    timeline_before = (await stack.d.get(timeline_of_b, headers=stack.cell)).json()
    duplicates = stack.detection.consumer.stats.duplicates
    await resend_with_a_new_id(
        stack, SURVEYS.physical(stack.detection.settings.kafka_topic_prefix), FAURECIA_B
    )
    await eventually(
        lambda: asyncio.sleep(0, stack.detection.consumer.stats.duplicates),
        lambda n: n > duplicates,
        what="the re-sent survey seen as a duplicate",
    )
    timeline_after = (await stack.d.get(timeline_of_b, headers=stack.cell)).json()
    assert timeline_after == timeline_before
    assert len(await stack.projects()) == 2

    # An exogenous project declared twice (no Idempotency-Key): flagged, then dismissed.
    body = {
        "territory_id": "ti-3205",
        "shock_id": shock_id,
        "firm_name": "Blackstar",
        "kind": "new_site",
        "description": "Industrial tyre retreading plant looking for a site",
        "jobs_planned": 50,
        "consent_to_share": True,
    }
    first = await stack.post("/projects/exogenous", body)
    resp = await stack.d.post("/projects/exogenous", json=body, headers=stack.cell)
    assert resp.status_code == 201, resp.text
    second = resp.json()
    assert second["possible_duplicate_of"] == first["id"]
    assert "declared by the crisis cell" in second["duplicate_reason"]
    cleared = await stack.post(f"/projects/{second['id']}/not-a-duplicate", {"note": "two sites"})
    assert cleared["possible_duplicate_of"] is None

    # The crisis cell merges the look-alike: counted once, timelines and leads joined.
    survivor = await stack.post(f"/projects/{b['id']}/merge", {})
    assert survivor["id"] == a["id"]
    # Both surveys carry the test clock's instant: no report is newer, the survivor's
    # figures stay (a newer one would win, as the domain tests show).
    assert survivor["jobs_planned"] == 20
    # The clearing and the merge are events of different projects, so on different
    # partitions: the ledger may apply them in either order. Wait for both.
    ledger = await eventually(
        lambda: stack.ledger(shock_id),
        lambda led: (
            led["total"]["detected"] == 20 + 50 + 50 and led["total"]["jobs_under_review"] == 0
        ),
        what="the merged project counted once, nothing left under review",
    )
    assert ledger["total"]["projects"] == 3
    assert b["id"] not in {p["id"] for p in await stack.projects()}
    gone = (await stack.d.get(f"/projects/{b['id']}", headers=stack.cell)).json()
    assert gone["merged_into"] == a["id"]
    timeline = (await stack.d.get(f"/projects/{a['id']}/timeline", headers=stack.cell)).json()
    references = [t["reference"] for t in timeline if t["kind"] == "report"]
    assert any(r.startswith(f"from project {b['id']}: survey") for r in references)
    again = await stack.d.post(f"/projects/{b['id']}/merge", json={}, headers=stack.cell)
    assert again.status_code == 409 and "merged into" in again.json()["detail"]

    # Plant B's survey resubmitted with the same lead: it now updates the survivor.
    line_b["jobs_to_create"] = 16
    await stack.survey(visit[FAURECIA_B]["visit_id"], visit[FAURECIA_B]["consultant_id"], [line_b])
    await eventually(
        lambda: stack.ledger(shock_id),
        lambda led: led["total"]["detected"] == 16 + 50 + 50,
        what="the resubmission applied to the survivor",
    )
    assert len(await stack.projects()) == 3
