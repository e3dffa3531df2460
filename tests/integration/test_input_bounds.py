"""Input at the door (issue 10): out-of-range numbers and dates, cursors that decode but
hold garbage, and oversized bodies are answered with a readable 4xx naming what is wrong —
never a 500 — on each service, on both database backends.

Each case is one the issue names (integers of 2⁶³ and more, dates near 9999, a budget of
6.5e307 days, a 20 MB body) or its neighbour on another service's request schemas."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from services.funding.bootstrap import Funding
from services.funding.entrypoints.http import create_app as funding_app
from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.entrypoints.cli import demo_sites
from services.site_registry.entrypoints.http import create_app as registry_app
from services.site_registry.service_layer import batch_jobs
from shared.cursor import encode_cursor
from tests.support.dsl import BRIDGESTONE, TODAY, Stack, token
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

HUGE = 2**63  # one past the largest BIGINT
TWENTY_MB = 20 * 1024 * 1024
TERRITORY = "ti-3205"


def refused(resp: httpx.Response, field: str, status: int = 422) -> None:
    """A readable problem (not a 500) naming `field`."""
    assert resp.status_code == status, f"{resp.request.url} {resp.status_code}: {resp.text}"
    body = resp.json()
    assert resp.headers["content-type"].startswith("application/problem+json")
    if "errors" in body:
        fields = [e["field"] for e in body["errors"]]
        assert any(f == field or f.endswith("." + field) for f in fields), body
    else:
        assert field in body["detail"], body


def bad_cursors(*shapes: tuple[str, ...]) -> list[str]:
    return [encode_cursor(*parts) for parts in shapes]


@pytest.fixture
async def registry_client(registry: SiteRegistry) -> AsyncIterator[httpx.AsyncClient]:
    await batch_jobs.load_sites(registry.uow, demo_sites(), registry.refs)
    transport = httpx.ASGITransport(app=registry_app(registry, run_workers=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as c:
        yield c


async def test_the_registry_refuses_what_it_could_not_store(
    registry: SiteRegistry, registry_client: httpx.AsyncClient
) -> None:
    cell = token(registry.auth, "crisis_cell", "cell", territories=[TERRITORY])
    shock = {"site_id": BRIDGESTONE, "announced_on": "2020-09-16", "jobs_lost": 900}
    r = registry_client

    for jobs in (HUGE, 10**6 + 1):
        refused(
            await r.post("/closure-shocks", json={**shock, "jobs_lost": jobs}, headers=cell),
            "jobs_lost",
        )
    for name, day in (("announced_on", "9999-12-31"), ("planned_closure_on", "9999-12-31")):
        refused(
            await r.post("/closure-shocks", json={**shock, name: day}, headers=cell),
            name,
        )
    refused(
        await r.post(
            f"/sites/{BRIDGESTONE}/closure", json={"closed_on": "9999-12-31"}, headers=cell
        ),
        "closed_on",
    )
    # A page cursor holding a NUL (PostgreSQL cannot compare with it) or a huge key.
    for cursor in bad_cursors(("\x00",), ("9" * 5000,)):
        resp = await r.get("/sites", params={"cursor": cursor}, headers=cell)
        refused(resp, "cursor", status=400)

    # 20 MB of JSON is refused before it is parsed.
    padding = "x" * TWENTY_MB
    resp = await r.post("/closure-shocks", json={**shock, "note": padding}, headers=cell)
    assert resp.status_code == 413, resp.text[:300]
    assert resp.json()["code"] == "too_large"

    ok = await r.post("/closure-shocks", json=shock, headers=cell)
    assert ok.status_code == 201, ok.text


@pytest.fixture
async def funding_client(funding: Funding) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=funding_app(funding, run_workers=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://funding") as c:
        yield c


SCHEME: dict[str, Any] = {
    "id": "hdf-bounds-scheme",
    "name": "Aide régionale de test (generated for this test)",
    "funders": ["Région Hauts-de-France"],
    "perimeter": {"scale": "region", "codes": ["32"]},
    "aid_type": "grant",
    "rate_max_pct": 40,
    "amount_max_eur": 500_000,
    "source": "generated test data",
}


async def test_funding_refuses_counts_and_amounts_beyond_the_domain(
    funding: Funding, funding_client: httpx.AsyncClient
) -> None:
    region = token(funding.auth, "funder", "hdf", regions=["32"], org="Région Hauts-de-France")
    f = funding_client
    uncapped = {k: v for k, v in SCHEME.items() if k != "amount_max_eur"}
    for name in ("amount_min_eur", "amount_max_eur", "capex_min_eur", "capex_max_eur"):
        refused(
            await f.put(f"/schemes/{SCHEME['id']}", json={**uncapped, name: HUGE}, headers=region),
            name,
        )
    for name, value in (("rate_max_pct", 1e308), ("closes_on", "9999-12-31")):
        refused(
            await f.put(f"/schemes/{SCHEME['id']}", json={**SCHEME, name: value}, headers=region),
            name,
        )
    ok = await f.put(f"/schemes/{SCHEME['id']}", json=SCHEME, headers=region)
    assert ok.status_code in (200, 201), ok.text

    call = {
        "id": "hdf-bounds-call",
        "scheme_id": SCHEME["id"],
        "name": "Appel à projets de test",
        "rounds": [{"name": "vague 1", "closes_on": "2024-03-01", "quota": 50}],
    }
    for name in ("envelope_eur", "quota"):
        bad = {**call, "rounds": [{**call["rounds"][0], name: HUGE}]}
        refused(await f.put("/calls/hdf-bounds-call", json=bad, headers=region), name)
    assert (await f.put("/calls/hdf-bounds-call", json=call, headers=region)).status_code == 200
    result = {
        "round": "vague 1",
        "decided_on": "2024-04-01",
        "applications": 50,
        "selected": 18,
        "per_territory": {TERRITORY: 18},
    }
    for name in ("applications", "selected"):
        refused(
            await f.post(
                "/calls/hdf-bounds-call/results", json={**result, name: HUGE}, headers=region
            ),
            name,
        )
    refused(
        await f.post(
            "/calls/hdf-bounds-call/results",
            json={**result, "per_territory": {TERRITORY: HUGE}},
            headers=region,
        ),
        f"per_territory.{TERRITORY}",
    )
    refused(
        await f.post(
            "/calls/hdf-bounds-call/results",
            json={**result, "decided_on": "9999-12-31"},
            headers=region,
        ),
        "decided_on",
    )
    application = {"project_id": str(uuid.uuid4()), "scheme_id": SCHEME["id"]}
    refused(
        await f.post(
            "/applications", json={**application, "amount_requested_eur": HUGE}, headers=region
        ),
        "amount_requested_eur",
    )
    some_id = uuid.uuid4()
    for path, body, name in (
        ("award", {"amount_eur": HUGE, "decided_on": "2024-01-01"}, "amount_eur"),
        ("payments", {"amount_eur": HUGE, "paid_on": "2024-01-01"}, "amount_eur"),
        ("payments", {"amount_eur": 1, "paid_on": "9999-12-31"}, "paid_on"),
    ):
        refused(await f.post(f"/applications/{some_id}/{path}", json=body, headers=region), name)


async def test_campaigns_and_detection_refuse_out_of_range_numbers_dates_and_cursors(
    stack: Stack,
) -> None:
    await stack.shock()
    mine = await stack.visits("consultant-1", at_least=2)
    me = stack.consultant("consultant-1")
    c, d, cell = stack.c, stack.d, stack.cell
    campaign_id = mine[0]["campaign_id"]

    # The agenda: a day near the end of the calendar, and cursors that decode.
    refused(await c.get("/me/visits", params={"from": "9999-12-31", "days": 2}, headers=me), "from")
    refused(await c.get("/me/visits", params={"from": "0001-01-01"}, headers=me), "from")
    refused(await c.get("/me/visits", params={"days": 10**6}, headers=me), "days")
    today = TODAY.date().isoformat()
    for cursor in bad_cursors(
        (today, str(HUGE), str(uuid.uuid4())),
        (today, str(-HUGE), str(uuid.uuid4())),
        (today, "first", str(uuid.uuid4())),
        (today, "1", "not-a-uuid"),
        ("garbage", "x"),
    ):
        resp = await c.get("/me/visits", params={"cursor": cursor, "days": 31}, headers=me)
        refused(resp, "cursor", status=400)
    # Well-formed but past every visit: an empty page, not an error.
    far = encode_cursor("9999-12-31", "1", str(uuid.uuid4()))
    resp = await c.get("/me/visits", params={"cursor": far, "days": 31}, headers=me)
    assert resp.status_code == 200 and resp.json()["items"] == [], resp.text

    # The campaign's terms: finite, bounded budgets and an end within the campaign's reach.
    terms = f"/campaigns/{campaign_id}/terms"
    for name, value in (
        ("cost_per_visit_days", 6.5e307),
        ("budget_days", 6.5e307),
        ("budget_days", 1e6),
        ("ends_on", "9999-12-31"),
        ("ends_on", "2099-01-01"),  # within the calendar, but no crisis campaign lasts 70 years
    ):
        refused(await c.patch(terms, json={name: value}, headers=cell), name)

    # A survey's figures.
    visit = mine[0]["id"]
    lead = {
        "kind": "new_line",
        "description": "A new line",
        "jobs_to_create": 3,
        "maturity": "idea",
        "known_to_public_actors": False,
    }
    for name in ("capex_eur", "funding_need_eur", "jobs_to_create"):
        body = {"questionnaire_version": "2026-1", "projects": [{**lead, name: HUGE}]}
        refused(await c.post(f"/visits/{visit}/survey", json=body, headers=me), name)
    for body, name in (
        ({"headcount": HUGE}, "headcount"),
        ({"red_flags": [{"kind": "layoffs", "jobs_at_risk": HUGE}]}, "jobs_at_risk"),
    ):
        full = {"questionnaire_version": "2026-1", **body}
        refused(await c.post(f"/visits/{visit}/survey", json=full, headers=me), name)
    refused(
        await c.post(
            f"/visits/{visit}/outcome",
            json={"outcome": "reached", "visited_on": "9999-12-31"},
            headers=me,
        ),
        "visited_on",
    )
    for day in (TODAY.date() + timedelta(days=30), date(2000, 1, 3)):  # not yet / long before
        refused(
            await c.post(
                f"/visits/{visit}/outcome",
                json={"outcome": "reached", "visited_on": day.isoformat()},
                headers=me,
            ),
            "visited_on",
        )

    # Detection: an exogenous project's figures and dates, and its list's cursors.
    exogenous = {
        "territory_id": TERRITORY,
        "firm_name": "Blackstar",
        "description": "A new plant",
        "jobs_planned": 50,
    }
    for name in ("capex_eur", "funding_need_eur", "jobs_planned"):
        refused(
            await d.post("/projects/exogenous", json={**exogenous, name: HUGE}, headers=cell),
            name,
        )
    for cursor in bad_cursors(
        ("9999-12-31", str(uuid.uuid4())),
        ("0001-01-01", "not-a-uuid"),
        ("garbage",),
    ):
        resp = await d.get("/projects", params={"cursor": cursor}, headers=cell)
        assert resp.status_code in (200, 400), resp.text
        if resp.status_code == 400:
            refused(resp, "cursor", status=400)
    some_id = uuid.uuid4()
    refused(
        await d.post(
            f"/projects/{some_id}/jobs",
            json={"jobs_created_total": 1, "created_on": "9999-12-31"},
            headers=cell,
        ),
        "created_on",
    )
    refused(
        await d.get(f"/shocks/{some_id}/ledger", params={"until": "9999-12-31"}, headers=cell),
        "until",
    )

    # What is in range still goes through.
    fine = await c.get("/me/visits", params={"from": today, "days": 31}, headers=me)
    assert fine.status_code == 200, fine.text
    page = await eventually(
        lambda: c.get("/me/visits", params={"limit": 1, "days": 31}, headers=me),
        lambda resp: resp.status_code == 200 and "next_cursor" in resp.json(),
        what="a first page of the agenda",
    )
    nxt = await c.get(
        "/me/visits",
        params={"limit": 1, "days": 31, "cursor": page.json()["next_cursor"]},
        headers=me,
    )
    assert nxt.status_code == 200, nxt.text
