"""Funding through the real services: a survey's decarbonation project, qualified in
detection, matched in funding against the real seed catalogue; a funder's award moves the
project to funded and the ledger's funded jobs."""

from __future__ import annotations

import uuid

import pytest

from tests.support.dsl import ADEME_ECODESIGN, OTHER_REGION, FundingStack, token
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_qualified_project_is_matched_explained_planned_and_funded(
    funding_stack: FundingStack,
) -> None:
    st = funding_stack
    shock_id, (project,) = await st.surveyed_projects(consent=True)
    resp = await st.d.post(f"/projects/{project['id']}/qualify", json={}, headers=st.cell)
    assert resp.status_code == 200, resp.text
    await st.detection.relay.publish_pending()

    async def matches() -> dict:
        resp = await st.f.get(f"/projects/{project['id']}/matches", headers=st.cell)
        return dict(resp.json()) if resp.status_code == 200 else {}

    found = await eventually(matches, lambda m: bool(m.get("eligible")), what="matches")
    assert found["firm_size"] == "sme" and found["region_code"] == "32"
    eligible = {m["scheme_id"]: m for m in found["eligible"]}
    assert ADEME_ECODESIGN in eligible
    ademe = eligible[ADEME_ECODESIGN]
    assert {c["criterion"]: c["status"] for c in ademe["criteria"]}["perimeter"] == "pass"
    assert all(c["reason"] for c in ademe["criteria"])
    scheme = (await st.f.get(f"/schemes/{ADEME_ECODESIGN}", headers=st.cell)).json()
    assert (scheme["rate_min_pct"], scheme["rate_max_pct"]) == (15.0, 55.0)

    rejected = {m["scheme_id"]: m for m in found["rejected"]}
    perimeter = next(c for c in rejected[OTHER_REGION]["criteria"] if c["criterion"] == "perimeter")
    assert perimeter["status"] == "fail"
    assert "84" in perimeter["reason"] and "32" in perimeter["reason"]

    plan = (await st.f.get(f"/projects/{project['id']}/plan", headers=st.cell)).json()["plan"]
    assert plan["base_eur"] == 1_200_000
    assert plan["grant_equivalent_eur"] <= plan["cap_eur"]
    assert plan["total_eur"] <= 600_000
    assert plan["cap_eur"] == round(1_200_000 * plan["cap_pct"] / 100)

    ademe_funder = token(st.funding.auth, "funder", "ademe-hdf", regions=["32"], org="ADEME")
    listed = (await st.f.get("/funder/projects", headers=ademe_funder)).json()
    assert [p["project_id"] for p in listed] == [project["id"]]

    async def apply() -> str:
        resp = await st.f.post(
            "/applications",
            json={
                "project_id": project["id"],
                "scheme_id": ADEME_ECODESIGN,
                "amount_requested_eur": 300_000,
            },
            headers={**ademe_funder, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    async def stage() -> str:
        resp = await st.d.get(f"/projects/{project['id']}", headers=st.cell)
        return str(resp.json()["stage"])

    # A first application is refused: the project goes back to qualified.
    first = await apply()
    await st.funding.relay.publish_pending()
    await eventually(stage, lambda s: s == "in_funding", what="project in funding")
    refusal = await st.f.post(
        f"/applications/{first}/refusal",
        json={"reason": "envelope exhausted for this round", "decided_on": "2023-06-05"},
        headers=ademe_funder,
    )
    assert refusal.status_code == 200, refusal.text
    await st.funding.relay.publish_pending()
    await eventually(stage, lambda s: s == "qualified", what="back to qualified")

    # A second one is granted, then paid in part; overpaying is refused.
    second = await apply()
    award = await st.f.post(
        f"/applications/{second}/award",
        json={"amount_eur": 250_000, "decided_on": "2023-06-10"},
        headers=ademe_funder,
    )
    assert award.status_code == 200, award.text
    paid = await st.f.post(
        f"/applications/{second}/payments",
        json={"amount_eur": 100_000, "paid_on": "2023-07-01"},
        headers=ademe_funder,
    )
    assert paid.status_code == 200 and paid.json()["amount_paid_eur"] == 100_000
    too_much = await st.f.post(
        f"/applications/{second}/payments",
        json={"amount_eur": 200_000, "paid_on": "2023-08-01"},
        headers=ademe_funder,
    )
    assert too_much.status_code == 409 and "exceed" in too_much.json()["detail"]
    await st.funding.relay.publish_pending()

    await eventually(stage, lambda s: s == "funded", what="project funded in detection")
    await st.detection.relay.publish_pending()

    async def ledger() -> dict:
        resp = await st.d.get(f"/shocks/{shock_id}/ledger", headers=st.cell)
        return dict(resp.json()) if resp.status_code == 200 else {}

    led = await eventually(
        ledger, lambda x: x.get("total", {}).get("funded") == 8, what="funded jobs in the ledger"
    )
    assert led["endogenous"]["funded"] == 8


async def test_funders_never_see_a_project_without_consent(funding_stack: FundingStack) -> None:
    st = funding_stack
    _, (project,) = await st.surveyed_projects(consent=False)
    resp = await st.d.post(f"/projects/{project['id']}/qualify", json={}, headers=st.cell)
    assert resp.status_code == 200
    await st.detection.relay.publish_pending()

    async def matched() -> dict:
        resp = await st.f.get(f"/projects/{project['id']}/matches", headers=st.cell)
        return dict(resp.json()) if resp.status_code == 200 else {}

    await eventually(matched, lambda m: bool(m.get("eligible")), what="matched anyway")
    funder = token(st.funding.auth, "funder", "ademe-hdf", regions=["32"], org="ADEME")
    assert (await st.f.get("/funder/projects", headers=funder)).json() == []
    hidden = await st.f.get(f"/projects/{project['id']}/matches", headers=funder)
    assert hidden.status_code == 404
    refused = await st.f.post(
        "/applications",
        json={
            "project_id": project["id"],
            "scheme_id": ADEME_ECODESIGN,
            "amount_requested_eur": 1000,
        },
        headers=funder,
    )
    assert refused.status_code == 404
